// bert_embed: sentence embeddings of a BERT, as sentence-transformers computes them for all-MiniLM-L6-v2 (mean
// pooling over the real tokens, then L2 normalisation; train/sentence_embedding.h).
//
//   bert_embed --checkpoint DIR | RUN | model.safetensors --input sentences.txt --out emb.safetensors | emb.npy
//              [--vocab vocab.txt] [--config config.json] [--batch_size 32] [--max_seq_len 256] [--int8]
//              [--compare_with OTHER.safetensors | OTHER.npy] [--top_k 10]
//
// --input holds one UTF-8 sentence per line; row i of the output is line i + 1, so an empty line is an error
// (train/embedding_io.h). The output format follows the extension: .safetensors (one F32 tensor "embeddings"
// (N,D)) or .npy (float32, C order); written atomically. --checkpoint is resolved as for bert_eval
// (train/checkpoint_paths.h); --vocab defaults to vocab.txt beside the model file (a Hugging Face download such as
// .cache/minilm/), else RUN/vocab.txt. A quantized checkpoint (bert_quant's output) runs fake-quantized, or with
// --int8 its encoder Linears in int8, as in bert_eval.
//
// --compare_with OTHER prints how far this run's embeddings are from OTHER's, the same sentences embedded by
// another model (train/retrieval_agreement.h): the mean overlap of each sentence's top-k cosine neighbours
// (1 = the same neighbours) and the mean cosine between the two embeddings of each sentence. Embed with the FP
// checkpoint first, then with the quantized one and --compare_with the FP file.
//
// Progress goes to stderr (every 5% of the sentences or 5 seconds), the results to stdout.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "models/bert_config.h"
#include "quant/fp_or_quantized_bert.h"
#include "train/checkpoint_paths.h"
#include "train/embedding_io.h"
#include "train/retrieval_agreement.h"
#include "train/sentence_embedding.h"
#include "train/tokenizer.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, checkpoint, "", "a checkpoint directory, a run directory (its latest checkpoint) or a "
                                       "model.safetensors file, FP or quantized");
ABSL_FLAG(std::string, config, "", "the model's config.json (default: beside the model file, else RUN/config.json)");
ABSL_FLAG(std::string, vocab, "", "the model's vocab.txt (default: beside the model file, else RUN/vocab.txt)");
ABSL_FLAG(std::string, input, "", "text file, one UTF-8 sentence per line (no empty lines)");
ABSL_FLAG(std::string, out, "", "output file: .safetensors (F32 tensor \"embeddings\" (N,D)) or .npy");
ABSL_FLAG(int64_t, batch_size, 32, "sentences per encoder pass");
ABSL_FLAG(int64_t, max_seq_len, bertforge::kDefaultSentenceMaxSeqLen,
          "tokens per sentence, [CLS] and [SEP] included; longer sentences are truncated");
ABSL_FLAG(bool, int8, false, "a quantized checkpoint: run its encoder Linears with the int8 GEMM instead of "
                              "dequantized FP32 weights");
ABSL_FLAG(std::string, compare_with, "", "embeddings of the same sentences by another model (.safetensors or .npy): "
                                         "print the top-k neighbour overlap and mean cosine against them");
ABSL_FLAG(int64_t, top_k, bertforge::kDefaultRetrievalTopK, "neighbours per sentence for --compare_with");

namespace bertforge {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::Status run() {
  const std::string input = absl::GetFlag(FLAGS_input), out = absl::GetFlag(FLAGS_out);
  const std::string compare_with = absl::GetFlag(FLAGS_compare_with);
  if (input.empty() || out.empty()) return absl::InvalidArgumentError("--input and --out are required (see --help)");
  BF_RETURN_IF_ERROR(check_embedding_extension(out));
  if (!compare_with.empty()) BF_RETURN_IF_ERROR(check_embedding_extension(compare_with));
  SentenceEmbeddingOptions options;
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.max_seq_len = absl::GetFlag(FLAGS_max_seq_len);
  if (options.batch_size < 1) return absl::InvalidArgumentError("--batch_size must be at least 1");
  if (absl::GetFlag(FLAGS_top_k) < 1) return absl::InvalidArgumentError("--top_k must be at least 1");

  BF_ASSIGN_OR_RETURN(const std::vector<std::string> sentences, read_sentences(input));
  BF_ASSIGN_OR_RETURN(const CheckpointPaths paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_checkpoint)));
  BF_ASSIGN_OR_RETURN(const std::string config_file, resolve_config_path(paths, absl::GetFlag(FLAGS_config)));
  BF_ASSIGN_OR_RETURN(const BertConfig config, BertConfig::load(config_file));
  BF_RETURN_IF_ERROR(config.validate());
  if (options.max_seq_len < 2 || options.max_seq_len > config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("--max_seq_len must be in [2, ", config.max_position_embeddings,
                                                   "], got ", options.max_seq_len));
  }
  // The other embeddings are checked before the model runs: same sentence count, same width.
  Tensor other;
  if (!compare_with.empty()) {
    if (sentences.size() < 2) return absl::InvalidArgumentError("--compare_with needs at least 2 sentences");
    BF_ASSIGN_OR_RETURN(other, read_embeddings(compare_with));
    const Shape expected{static_cast<int64_t>(sentences.size()), config.hidden_size};
    if (other.shape() != expected) {
      return absl::InvalidArgumentError(absl::StrCat("--compare_with ", compare_with, " holds ", other.shape_str(),
                                                     " embeddings, this run makes ", shape_to_string(expected),
                                                     ": not the same sentences or not the same model width"));
    }
  }
  BF_ASSIGN_OR_RETURN(const std::string vocab_file, resolve_vocab_path(paths, absl::GetFlag(FLAGS_vocab)));
  BF_ASSIGN_OR_RETURN(const WordPieceTokenizer tokenizer, WordPieceTokenizer::load(vocab_file));
  BF_ASSIGN_OR_RETURN(const quant::FpOrQuantizedBert loaded,
                      quant::load_fp_or_quantized_bert(paths.weights, config, absl::GetFlag(FLAGS_int8)));
  std::fprintf(stderr, "bert_embed: %s: %s\n", paths.weights.c_str(), loaded.layout.c_str());

  const int64_t total = static_cast<int64_t>(sentences.size());
  const Clock::time_point start = Clock::now();
  Clock::time_point last_report = start;
  int64_t last_reported = 0;
  options.progress = [&](int64_t done) {
    if (done == total || ((done - last_reported) * 20 < total && seconds_since(last_report) < 5)) return;
    std::fprintf(stderr, "bert_embed: %lld/%lld sentences (%.0f%%), %.1f sentences/s\n",
                 static_cast<long long>(done), static_cast<long long>(total), 100.0 * done / total,
                 done / seconds_since(start));
    last_report = Clock::now();
    last_reported = done;
  };
  BF_ASSIGN_OR_RETURN(const Tensor embeddings, embed_sentences(*loaded.model, tokenizer, sentences, options));
  const double elapsed = seconds_since(start);
  std::fprintf(stderr, "bert_embed: %lld sentences in %.2f s (%.1f sentences/s)\n", static_cast<long long>(total),
               elapsed, total / elapsed);
  BF_RETURN_IF_ERROR(write_embeddings(out, embeddings));
  std::printf("wrote %s: %lld x %lld embeddings\n", out.c_str(), static_cast<long long>(embeddings.size(0)),
              static_cast<long long>(embeddings.size(1)));

  if (other.defined()) {
    BF_ASSIGN_OR_RETURN(const RetrievalAgreement agreement,
                        retrieval_agreement(other, embeddings, absl::GetFlag(FLAGS_top_k)));
    std::printf("retrieval agreement with %s: top-%lld overlap %.4f, mean cosine %.6f (%lld sentences)\n",
                compare_with.c_str(), static_cast<long long>(agreement.k), agreement.top_k_overlap,
                agreement.mean_cosine, static_cast<long long>(agreement.sentences));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  const char* usage = "sentence embeddings (mean pooling, L2-normalised) of a BERT checkpoint; see --help";
  if (!bertforge::parse_tool_flags("bert_embed", usage, argc, argv)) return 2;
  return bertforge::run_tool("bert_embed", bertforge::run);
}
