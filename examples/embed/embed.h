/* embed.h - the two helpers of ecf8-embed (embed.c):
 *  - model_file.c: tensors of a .ecf8 container or of a .safetensors file
 *    through one interface: ecf8_tensor_info descriptions (a safetensors
 *    tensor is described as a STORED tensor with its checksum, which is
 *    what ecf8_cl_matmul_create and ecf8_cl_tensor_create accept) and reads
 *    of their original bytes;
 *  - wordpiece.c: the BERT (uncased) WordPiece tokenizer over a vocab.txt:
 *    text cleaning, lower-casing and accent stripping, punctuation and CJK
 *    splitting, then greedy longest-match-first word pieces with "##". */
#ifndef ECF8_EMBED_H
#define ECF8_EMBED_H

#include <stddef.h>

#include <ecf8.h>

/* ---- model_file.c ---- */
typedef struct model_file model_file;

/* Opens `path` (a safetensors file when its header says so, else an .ecf8
 * container).  NULL on failure with a message in err. */
model_file *model_file_open(const char *path, char *err, size_t err_size);
void model_file_close(model_file *f);
/* Describes tensor `name` in *out; ECF8_ERR_NOT_FOUND when there is none,
 * another status (and model_file_error) when its description is broken. */
int model_file_find(model_file *f, const char *name, ecf8_tensor_info *out);
const char *model_file_error(const model_file *f);
/* Its original bytes (out_bytes >= source_bytes), checksum checked. */
int model_file_read(model_file *f, const ecf8_tensor_info *t, void *out, size_t out_bytes);

/* ---- wordpiece.c ---- */
typedef struct wp_vocab wp_vocab;

/* Loads vocab.txt (one token a line, id = line number).  NULL on failure
 * with a message in err ("cannot open: ...", "no [UNK] token", ...). */
wp_vocab *wp_vocab_load(const char *path, char *err, size_t err_size);
void wp_vocab_free(wp_vocab *vocab);
size_t wp_vocab_size(const wp_vocab *vocab);

/* Tokenizes UTF-8 `text` into [CLS] pieces... [SEP], at most max_ids ids
 * (the pieces are truncated so that [SEP] still ends it).  Returns the
 * number of ids written and sets *untruncated to the number the whole text
 * needs; -1 when text is not valid UTF-8. */
int wp_tokenize(const wp_vocab *vocab, const char *text, int *ids, int max_ids, int *untruncated);

#endif
