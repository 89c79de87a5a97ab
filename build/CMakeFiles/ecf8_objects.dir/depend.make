# Empty dependencies file for ecf8_objects.
# This may be replaced when dependencies are built.
