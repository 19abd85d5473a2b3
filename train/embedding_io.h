// The files of bert_embed: sentences in, embeddings out, and a checkpoint's vocabulary.
//
// Sentences: UTF-8 text, one sentence per line ("\n" or "\r\n"; a last line without "\n" counts). Row i of the
// embeddings is line i + 1, so an empty (or all-whitespace) line is an error naming it, rather than a row that
// is silently dropped or an embedding of nothing; so is a file with no line at all.
//
// Embeddings, a float32 matrix (N,D), in the format the file extension names:
//   .safetensors   one F32 tensor "embeddings" (N,D) (core/safetensors.h)
//   .npy           NumPy's format, version 1.0: "\x93NUMPY", 1, 0, a little-endian uint16 header length, the
//                  header "{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }" padded with spaces to a
//                  '\n' that ends it at a multiple of 64 bytes, then the N*D floats in C order, little-endian
//                  (what numpy.save writes; numpy.load reads it)
// Writes are atomic (core/file_io.h). Reading takes either format back: a .npy of version 1, 2 or 3 whose
// dtype is little-endian float32 ('<f4'), C order, 2-D; a .safetensors with an F32 2-D "embeddings".
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/tensor.h"
#include "train/checkpoint_paths.h"

namespace bertforge {

// The sentences of the file at `path` (see above). NotFound or another I/O error naming the file when it cannot
// be read; InvalidArgument for an empty line (naming the first and the count) or a file without sentences.
absl::StatusOr<std::vector<std::string>> read_sentences(const std::string& path);

// Writes `embeddings` F32 (N,D), on any device, to `path` as its extension says. InvalidArgument for another
// extension (checked before anything is written).
absl::Status write_embeddings(const std::string& path, const Tensor& embeddings);

// Reads what write_embeddings wrote (or numpy.save of a 2-D float32 array): F32 (N,D) on the CPU.
absl::StatusOr<Tensor> read_embeddings(const std::string& path);

// InvalidArgument unless `path` ends in .safetensors or .npy.
absl::Status check_embedding_extension(const std::string& path);

// `explicit_vocab` when not empty, else the first vocab.txt that exists in the directories where
// resolve_config_path looks for config.json: beside the model file (a Hugging Face download), then RUN/ for
// RUN/checkpoints/step-N/. NotFound naming the places looked at otherwise (bert_train keeps its vocab.txt in
// the data directory bert_prep wrote, and a copy in RUN/vocab.txt).
absl::StatusOr<std::string> resolve_vocab_path(const CheckpointPaths& paths, const std::string& explicit_vocab);

}  // namespace bertforge
