# Empty dependencies file for ecf8.
# This may be replaced when dependencies are built.
