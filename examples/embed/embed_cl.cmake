# cmake -DIN=embed.cl -DOUT=embed_cl_source.h -P embed_cl.cmake: the kernel
# source as `static const char EMBED_CL_SOURCE[]`, a NUL-terminated byte
# array (no string-literal length limit, every character kept).
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 line_re)
string(REGEX REPLACE "(${line_re})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp" "/* Generated from embed.cl by embed_cl.cmake: do not edit. */\n"
     "static const char EMBED_CL_SOURCE[] = {\n    ${bytes}0x00};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
