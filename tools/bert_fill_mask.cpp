// bert_fill_mask: the tokens a BERT with an MLM head predicts for each [MASK] in lines of text, with their
// probabilities (train/fill_mask.h), as transformers' fill-mask pipeline gives them.
//
//   bert_fill_mask --checkpoint DIR | RUN | model.safetensors [--text "the [MASK] sat." | --input lines.txt]
//                  [--top_k 5] [--json] [--vocab vocab.txt] [--config config.json] [--int8]
//
// Without --text or --input the lines come from stdin. Every line needs at least one [MASK] (upper case); a line
// without one (an empty line included) is an error naming it, and so is a line longer than the model's
// max_position_embeddings tokens (it is not cut: that could drop a mask). All lines are tokenized before the model
// is loaded, so bad input fails fast. --checkpoint and --vocab are resolved as for bert_embed: the vocab.txt beside
// the model file (a Hugging Face download, bert_quant's output), else RUN/vocab.txt (a bert_train run). Any
// checkpoint with an MLM head works: FP (any Hugging Face layout), or quantized
// (bert_quant's output), fake-quantized or with --int8 its encoder Linears in int8, as in bert_eval. An
// encoder-only checkpoint (BertModel, e.g. all-MiniLM-L6-v2) has no MLM head and is refused, saying so.
//
// Output, per line: the line, then one row per [MASK] with its top-k tokens and probabilities (softmax over the
// whole vocabulary), highest first. --json prints one JSON object instead:
//   {"checkpoint": ..., "layout": ..., "quantization": null | "...", "top_k": k,
//    "lines": [{"line": 1, "text": ..., "tokens": ["[CLS]", ..., "[SEP]"],
//               "masks": [{"position": t, "predictions": [{"token": ..., "id": ..., "probability": ...}, ...]}]}]}
// The model's description goes to stderr.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "core/file_io.h"
#include "core/json.h"
#include "models/bert_config.h"
#include "quant/fp_or_quantized_bert.h"
#include "train/checkpoint_paths.h"
#include "train/embedding_io.h"
#include "train/fill_mask.h"
#include "train/tokenizer.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::string, checkpoint, "", "a checkpoint directory, a run directory (its latest checkpoint) or a "
                                       "model.safetensors file, FP or quantized, with an MLM head");
ABSL_FLAG(std::string, config, "", "the model's config.json (default: beside the model file, else RUN/config.json)");
ABSL_FLAG(std::string, vocab, "", "the model's vocab.txt (default: beside the model file, else RUN/vocab.txt)");
ABSL_FLAG(std::string, text, "", "one text with one or more [MASK] (instead of --input or stdin)");
ABSL_FLAG(std::string, input, "", "text file, one text per line, each with one or more [MASK] (default: stdin)");
ABSL_FLAG(int64_t, top_k, bertforge::kDefaultFillMaskTopK, "candidates printed per [MASK]");
ABSL_FLAG(bool, json, false, "print one JSON object instead of text");
ABSL_FLAG(bool, int8, false, "a quantized checkpoint: run its encoder Linears with the int8 GEMM instead of "
                              "dequantized FP32 weights");

namespace bertforge {
namespace {

// The lines to fill: --text, or the lines of --input or stdin ("\n" or "\r\n"; a final "\n" ends the last line).
absl::StatusOr<std::vector<std::string>> read_lines() {
  const std::string text = absl::GetFlag(FLAGS_text), input = absl::GetFlag(FLAGS_input);
  if (!text.empty() && !input.empty()) return absl::InvalidArgumentError("give --text or --input, not both");
  if (!text.empty()) return std::vector<std::string>{text};
  std::string contents;
  if (input.empty()) {  // a pipe or terminal has no size to read up to: read until end of file
    if (isatty(STDIN_FILENO)) std::fprintf(stderr, "bert_fill_mask: reading lines from stdin (Ctrl-D ends)\n");
    contents.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return absl::DataLossError("cannot read stdin");
  } else {
    BF_ASSIGN_OR_RETURN(contents, read_file(input));
  }
  std::vector<std::string> lines = absl::StrSplit(contents, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (std::string& line : lines) {
    if (absl::EndsWith(line, "\r")) line.pop_back();
  }
  if (lines.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(input.empty() ? "stdin" : input, " holds no lines"));
  }
  return lines;
}

Json filled_json(const std::vector<FilledMask>& masks) {
  Json out = Json::array();
  for (const FilledMask& mask : masks) {
    Json predictions = Json::array();
    for (const MaskCandidate& c : mask.top) {
      Json p = Json::object();
      p.set("token", c.token);
      p.set("id", static_cast<int64_t>(c.id));
      p.set("probability", c.probability);
      predictions.push_back(std::move(p));
    }
    Json m = Json::object();
    m.set("position", mask.position);
    m.set("predictions", std::move(predictions));
    out.push_back(std::move(m));
  }
  return out;
}

absl::Status run() {
  const int64_t top_k = absl::GetFlag(FLAGS_top_k);
  if (top_k < 1) return absl::InvalidArgumentError("--top_k must be at least 1");
  BF_ASSIGN_OR_RETURN(const std::vector<std::string> lines, read_lines());
  BF_ASSIGN_OR_RETURN(const CheckpointPaths paths, resolve_checkpoint_paths(absl::GetFlag(FLAGS_checkpoint)));
  BF_ASSIGN_OR_RETURN(const std::string config_file, resolve_config_path(paths, absl::GetFlag(FLAGS_config)));
  BF_ASSIGN_OR_RETURN(const BertConfig config, BertConfig::load(config_file));
  BF_RETURN_IF_ERROR(config.validate());
  if (top_k > config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("--top_k ", top_k, " is more than the vocabulary (",
                                                   config.vocab_size, " tokens)"));
  }
  BF_ASSIGN_OR_RETURN(const std::string vocab_file, resolve_vocab_path(paths, absl::GetFlag(FLAGS_vocab)));
  BF_ASSIGN_OR_RETURN(const WordPieceTokenizer tokenizer, WordPieceTokenizer::load(vocab_file));

  std::vector<std::vector<int32_t>> ids(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StatusOr<std::vector<int32_t>> line_ids =
        fill_mask_token_ids(tokenizer, lines[i], config.max_position_embeddings);
    if (!line_ids.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", i + 1, ": ", line_ids.status().message()));
    }
    ids[i] = *std::move(line_ids);
  }

  BF_ASSIGN_OR_RETURN(quant::FpOrQuantizedBert loaded,
                      quant::load_fp_or_quantized_bert(paths.weights, config, absl::GetFlag(FLAGS_int8)));
  std::fprintf(stderr, "bert_fill_mask: %s: %s\n", paths.weights.c_str(), loaded.layout.c_str());
  const absl::Status usable = check_fill_mask_model(*loaded.model, tokenizer);
  if (!usable.ok()) {  // no MLM head (the model's fault) or another vocabulary (the vocab file's)
    const bool no_head = usable.code() == absl::StatusCode::kFailedPrecondition;
    return absl::Status(usable.code(), absl::StrCat(no_head ? paths.weights : vocab_file, ": ", usable.message()));
  }

  const bool json = absl::GetFlag(FLAGS_json);
  Json results = Json::array();
  for (size_t i = 0; i < lines.size(); ++i) {
    BF_ASSIGN_OR_RETURN(const std::vector<FilledMask> masks, fill_mask(*loaded.model, tokenizer, ids[i], top_k));
    if (json) {
      Json tokens = Json::array();
      for (const int32_t id : ids[i]) tokens.push_back(tokenizer.token(id));
      Json line = Json::object();
      line.set("line", static_cast<int64_t>(i + 1));
      line.set("text", lines[i]);
      line.set("tokens", std::move(tokens));
      line.set("masks", filled_json(masks));
      results.push_back(std::move(line));
      continue;
    }
    std::printf("%s\n", lines[i].c_str());
    for (size_t m = 0; m < masks.size(); ++m) {
      std::string row = absl::StrCat("  [MASK] ", m + 1, "/", masks.size(), ":");
      for (const MaskCandidate& c : masks[m].top) {
        absl::StrAppend(&row, absl::StrFormat("  %s %.4f", c.token, c.probability));
      }
      std::printf("%s\n", row.c_str());
    }
  }
  if (json) {
    Json out = Json::object();
    out.set("checkpoint", paths.weights);
    out.set("layout", loaded.layout);
    out.set("quantization", loaded.quantization.empty() ? Json() : Json(loaded.quantization));
    out.set("top_k", top_k);
    out.set("lines", std::move(results));
    std::printf("%s\n", out.dump(2).c_str());
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace bertforge

int main(int argc, char** argv) {
  const char* usage = "the top-k tokens (with probabilities) a BERT's MLM head predicts for each [MASK]; see --help";
  if (!bertforge::parse_tool_flags("bert_fill_mask", usage, argc, argv)) return 2;
  return bertforge::run_tool("bert_fill_mask", bertforge::run);
}
