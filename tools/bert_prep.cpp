// bert_prep: text files -> WordPiece token shards for bert_train (train/corpus_prep.h).
//
//   bert_prep --input a.txt,b.txt --out DATA [--vocab vocab.txt | --vocab_size 8000]
//             [--documents line|blank] [--sentences] [--validation_fraction 0.01] [--shard_tokens N] [--seed S]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "core/check.h"
#include "train/corpus_prep.h"
#include "tools/tool_main.h"

ABSL_FLAG(std::vector<std::string>, input, {}, "comma-separated UTF-8 text files");
ABSL_FLAG(std::string, out, "", "output directory: vocab.txt, train/, validation/");
ABSL_FLAG(std::string, vocab, "", "an existing vocab.txt (e.g. bert-base-uncased's); empty: learn one");
ABSL_FLAG(int32_t, vocab_size, 8000, "size of the learnt vocabulary when --vocab is not given");
ABSL_FLAG(std::string, documents, "line", "line: one document per line; blank: blank-line separated");
ABSL_FLAG(bool, sentences, false,
          "store each sentence as its own segment, so bert_train's sequences get a [SEP] after every sentence "
          "(the train/validation split stays per document)");
ABSL_FLAG(double, validation_fraction, 0.01, "fraction of documents held out for validation");
ABSL_FLAG(int64_t, shard_tokens, 50000000, "tokens per shard file");
ABSL_FLAG(uint64_t, seed, 0, "seed of the train/validation split");

int main(int argc, char** argv) {
  if (!bertforge::parse_tool_flags("bert_prep", "turns text files into token shards for bert_train; see --help", argc,
                                   argv)) {
    return 2;
  }
  bertforge::CorpusPrepConfig config;
  config.inputs = absl::GetFlag(FLAGS_input);
  config.out_dir = absl::GetFlag(FLAGS_out);
  config.vocab_path = absl::GetFlag(FLAGS_vocab);
  config.learned_vocab_size = absl::GetFlag(FLAGS_vocab_size);
  config.validation_fraction = absl::GetFlag(FLAGS_validation_fraction);
  config.shard_tokens = absl::GetFlag(FLAGS_shard_tokens);
  config.seed = absl::GetFlag(FLAGS_seed);
  config.sentences = absl::GetFlag(FLAGS_sentences);
  const std::string documents = absl::GetFlag(FLAGS_documents);
  if (documents == "line") {
    config.split = bertforge::DocumentSplit::kLine;
  } else if (documents == "blank") {
    config.split = bertforge::DocumentSplit::kBlankLine;
  } else {
    std::fprintf(stderr, "bert_prep: --documents must be line or blank, got %s\n", documents.c_str());
    return 2;
  }
  return bertforge::run_tool("bert_prep", [&config]() -> absl::Status {
    BF_ASSIGN_OR_RETURN(const bertforge::CorpusPrepReport report,
                        bertforge::prepare_corpus(config, [](const std::string& line) {
                          std::printf("bert_prep: %s\n", line.c_str());
                          std::fflush(stdout);
                        }));
    const int64_t tokens = report.train_tokens + report.validation_tokens;
    std::printf("bert_prep: %lld train documents (%lld segments, %lld tokens), %lld validation documents "
                "(%lld segments, %lld tokens), %lld shards, vocabulary %d, [UNK] %.3f%%\n",
                static_cast<long long>(report.train_documents), static_cast<long long>(report.train_segments),
                static_cast<long long>(report.train_tokens), static_cast<long long>(report.validation_documents),
                static_cast<long long>(report.validation_segments), static_cast<long long>(report.validation_tokens),
                static_cast<long long>(report.shards), report.vocab_size,
                tokens > 0 ? 100.0 * static_cast<double>(report.unknown_tokens) / static_cast<double>(tokens) : 0.0);
    return absl::OkStatus();
  });
}
