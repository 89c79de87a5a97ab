# Empty compiler generated dependencies file for ecf8_static.
# This may be replaced when dependencies are built.
