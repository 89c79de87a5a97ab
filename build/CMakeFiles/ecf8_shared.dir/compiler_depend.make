# Empty compiler generated dependencies file for ecf8_shared.
# This may be replaced when dependencies are built.
