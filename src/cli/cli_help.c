/* cli_help.c - `ecf8 help [CMD]`, `ecf8 CMD --help`: every command's
 * synopsis and one line per option, with what it does and its default.
 * The overview (`ecf8 help`) is made from the same table. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct help_option {
    const char *flag; /* as typed, with its value's placeholder */
    const char *text; /* what it does; its default */
} help_option;

typedef struct command_help {
    const char *name;
    const char *args;    /* the synopsis after "ecf8 NAME" */
    const char *summary; /* one line */
    help_option options[12];
    const char *notes; /* NULL or lines ending in '\n' */
} command_help;

#define OPT_FORCE {"--force, -f", "replace an existing output file (default: refuse; a link, device or FIFO is never replaced)"}
#define OPT_THREADS(what) {"--threads N", what " threads, 0..256 (default 0: one per core)"}
#define OPT_HELP {"--help, -h", "print this help and exit"}

static const command_help g_commands[] = {
    {"compress", "IN.safetensors|DIR OUT.ecf8|OUTDIR/ [options]",
     "compress a .safetensors file or a checkpoint directory into a container (OUTDIR/: one per shard)",
     {{"--split auto|exponent|byte", "what is entropy-coded: auto (default) takes the smaller of the exponent "
                                     "field and the whole (high) byte per tensor, or stores it when coding does not shrink it; "
                                     "U8, I8 and F8_E8M0 have the byte split only, whatever is asked"},
      {"--max-code-bits B", "longest Huffman code, 1..13 (default 12)"},
      {"--chunk ELEMENTS", "elements per independently decodable chunk, 64..1048576 (default 4096; "
                           "8192 with --layout 1, which takes at most 65536)"},
      {"--layout 0|1", "stream layout: 0 serial chunks (default), 1 lane streams (32 per chunk, for "
                       "GPU decoders; a format 1.2 file that ecf8 1.0 and 1.1 refuse)"},
      OPT_THREADS("encoder"),
      {"--plain-index", "write the index uncompressed: format 1.0, readable by ecf8 1.0 (default: zstd index, format 1.1); "
                        "a file that codes FNUZ, U8, I8 or F8_E8M0 tensors is format 1.3 either way"},
      {"--exclude GLOB", "OUTDIR/ only: leave out the files (or directories) whose path relative to DIR matches "
                         "GLOB ('*' also matches '/'); repeatable (default: leave out nothing)"},
      {"--include GLOB", "OUTDIR/ only: take only the files that match a GLOB; repeatable (default: every file)"},
      {"--max-file-size BYTES", "OUTDIR/ only: refuse (nothing split) when an output file would be larger "
                                "(default 50000000000, the Hugging Face Hub's 50 GB limit)"},
      {"--force, -f", "replace an existing output file or directory (default: refuse; a link, device or FIFO "
                      "is never replaced)"},
      OPT_HELP},
     "DIR OUT.ecf8: one container holding every *.safetensors and *.json file of DIR.\n"
     "DIR OUTDIR/ (a trailing '/' or an existing directory): the checkpoint as published, one\n"
     "OUTDIR/NAME.ecf8 per DIR/NAME.safetensors at any depth and every other file copied as it\n"
     "is (config, tokenizer, the shard index *.safetensors.index.json); names starting with '.'\n"
     "are skipped.  Each index is checked first: a shard it names that is missing or left out,\n"
     "a stray shard of its NAME-NNNNN-of-MMMMM series, or a malformed index is an error.  Usually\n"
     "left out: --exclude original (the same weights for another runtime) and\n"
     "--exclude consolidated.safetensors (a duplicate of the shards).  OUTDIR is staged under a\n"
     "temporary name beside it and renamed into place when every file is complete.\n"},
    {"convert", "IN.ecf8 OUT.ecf8 --layout 0|1 [options]",
     "re-lay a container's coded tensors in another stream layout, with the same code lengths",
     {{"--layout 0|1", "the stream layout to write: 0 serial chunks, 1 lane streams (format 1.2)"},
      {"--chunk ELEMENTS", "target elements per chunk of tensors whose layout changes (default 4096; "
                           "8192 for layout 1)"},
      OPT_THREADS("decoder and encoder"), OPT_FORCE, OPT_HELP},
     "Names, sources, splits and code lengths are kept and the index stays plain or compressed\n"
     "as it was; converting a default file to layout 1 and back gives it byte for byte.\n"},
    {"decompress", "IN.ecf8|INDIR/ OUT.safetensors|DIR [options]",
     "rebuild the original file (or directory) byte for byte, every checksum checked",
     {{"--engine auto|opencl|cpu", "decoder: auto (default) uses an OpenCL device that is not a CPU, else the CPU decoder; a directory of containers (INDIR/) is decoded on the CPU"},
      OPT_THREADS("CPU decoder"),
      {"--force, -f", "replace an existing output file, or the output directory of an INDIR/ (default: refuse; "
                      "a link, device or FIFO is never replaced)"},
      OPT_HELP},
     "All or nothing: outputs are written under temporary names and renamed when all are complete.\n"
     "INDIR/ (made by compress DIR OUTDIR/): every NAME.ecf8 becomes NAME.safetensors, the other\n"
     "files are copied, the shard indexes are checked; DIR is staged and renamed into place, and\n"
     "an existing DIR is an error without --force.  Decoded on the CPU.\n"},
    {"verify", "IN.ecf8|INDIR/ [ORIGINAL.safetensors|DIR] [options]",
     "decode every tensor and check its checksum; with ORIGINAL, compare the rebuild with it byte for byte",
     {OPT_THREADS("decoder"), OPT_HELP},
     "INDIR/ (made by compress DIR OUTDIR/): its shard indexes and every container; with DIR, also\n"
     "every file INDIR/ covers (NAME.safetensors for NAME.ecf8, the copied files) byte for byte.\n"},
    {"info", "FILE.safetensors|FILE.ecf8 [options]",
     "per tensor, to compress or not: dtype, shape, split, bits per weight coded and bound",
     {{"--json", "print JSON instead of the table (default: a table)"},
      {"--histogram TENSOR", "the exponent histogram of one tensor of a .safetensors file (U8, I8: its bytes'; text, or JSON with --json)"},
      {"--wide", "add each tensor's byte counts, source and coded, to the table (default: bits per weight only)"},
      OPT_HELP},
     "Names are printed in full, in the last column.  An .ecf8 file is described from its index:\n"
     "no tensor is decoded (no entropy figures; verify decodes).  Its --json also gives the\n"
     "format version, the source files and each coded tensor's stream (layout, longest code,\n"
     "chunk rows and columns, chunks).  Packed FP4, a U8 tensor whose name ends in weight_packed\n"
     "(compressed-tensors NVFP4) or _blocks (gpt-oss MXFP4), holds two E2M1 weights a byte: the\n"
     "table sums its bits per FP4 weight (coded bits / (2 x bytes)), --json gives it per tensor\n"
     "(fp4_bits_per_weight, null for other tensors).\n"},
    {"ls", "FILE.ecf8|FILE.safetensors [options]",
     "list the tensors, one line each: dtype, shape, bytes, split and the name (last, in full)",
     {{"--json", "print a JSON array instead of lines (default: lines)"}, OPT_HELP},
     "An .ecf8 file is listed from its index.  For a .safetensors file the split is the one\n"
     "compress --split auto would choose, which reads the tensors.\n"},
    {"extract", "FILE.ecf8 TENSOR -o OUT.npy|OUT.bin [options]",
     "decode one tensor, check its checksum and write it to OUT",
     {{"-o, --output OUT", "the output file (required): OUT.npy a NumPy array, any other name the raw bytes"},
      OPT_FORCE, OPT_HELP},
     "A .npy holds the tensor's dtype and shape (F64/F32/F16, I64..I8, U64..U8, BOOL).  BF16 and FP8\n"
     "have no NumPy dtype: their .npy holds the raw bits as uint16 / uint8 (a note says so;\n"
     "numpy: a.view(ml_dtypes.bfloat16)); OUT.bin holds the bytes as the safetensors file did.\n"},
    {"devices", "[options]",
     "list the OpenCL platforms and devices and the one ecf8 uses (ECF8_PLATFORM / ECF8_DEVICE)",
     {{"--json", "print JSON instead of text (default: text)"}, OPT_HELP},
     NULL},
    {"matmul", "FILE.ecf8 --tensor NAME --input X.npy --output Y.npy [options]",
     "Y = X W^T on an OpenCL device, W a tensor of the container (FP8 with its scales: F32, BF16, F16\n"
     "or E8M0; scalar, per-row, 128x128, 32x32 or 1x32 blocks; or BF16)",
     {{"--tensor NAME", "the weight W, [N, K] (required)"},
      {"--input X.npy", "float32 array of shape (K,) or (M, K) (required)"},
      {"--output Y.npy", "float32 result, (N,) or (M, N) (required)"},
      {"--engine fused|uncompressed", "fused (default) decodes only the tiles it multiplies; uncompressed reads W stored raw (same Y, bit for bit)"},
      OPT_FORCE, OPT_HELP},
     NULL},
    {"version", "", "print the version of ecf8 and of the container format it writes", {OPT_HELP}, NULL},
    {"help", "[COMMAND]", "print the overview, or a command's help (as ecf8 COMMAND --help)", {OPT_HELP}, NULL},
};

static const command_help *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof g_commands / sizeof *g_commands; i++)
        if (!strcmp(g_commands[i].name, name)) return &g_commands[i];
    return NULL;
}

void cli_overview(FILE *f)
{
    fprintf(f, "ecf8 %s - lossless compression of FP8/BF16/FP16 weights\n\nusage:\n", ECF8_VERSION_STRING);
    for (size_t i = 0; i < sizeof g_commands / sizeof *g_commands; i++) {
        const command_help *c = &g_commands[i];
        fprintf(f, "  ecf8 %s%s%s\n      %s\n", c->name, c->args[0] ? " " : "", c->args, c->summary);
    }
    fprintf(f, "\n'ecf8 help COMMAND' (or 'ecf8 COMMAND --help') lists a command's options.\n"
               "Outputs are written under a temporary name and renamed into place when complete.\n"
               "An existing output file is replaced only with --force (-f); a symbolic link, device\n"
               "or FIFO is never replaced.  SIGINT, SIGTERM, SIGHUP and SIGPIPE remove temporaries.\n"
               "Benchmarks: ecf8-bench-decode, ecf8-bench-matmul, ecf8-bench-codec (bench/).\n");
}

int cli_help(const char *command)
{
    const command_help *c = find_command(command);
    if (!c) return cli_usage_error("unknown command '%s'", command);
    printf("usage: ecf8 %s%s%s\n\n%s.\n\noptions:\n", c->name, c->args[0] ? " " : "", c->args, c->summary);
    for (const help_option *o = c->options; o < c->options + sizeof c->options / sizeof *c->options && o->flag; o++)
        printf("  %-28s %s\n", o->flag, o->text);
    if (c->notes) printf("\n%s", c->notes);
    return 0;
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}
