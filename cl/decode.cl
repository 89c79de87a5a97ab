/* decode.cl - chunked Huffman decode (work in progress). */
#ifndef ECF8_WIDTH
#define ECF8_WIDTH 1
#endif
__kernel void ecf8_decode_placeholder(__global uchar *out) { out[get_global_id(0)] = 0; }
