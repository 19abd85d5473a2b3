// bert_prep's pipeline: documents -> (sentences ->) WordPiece ids -> train/validation shards.
#include "train/corpus_prep.h"

#include <filesystem>
#include <fstream>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "core/philox.h"
#include "train/token_shard.h"
#include "train/tokenizer.h"
#include "train/vocab_builder.h"

namespace bertforge {
namespace {

inline constexpr uint64_t kValidationStreamTag = 0x56414C4944415445ull;  // "VALIDATE"

// The word breaks of split_sentences: the ASCII whitespace the tokenizer turns into a space.
bool is_break(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The length of the closing quote or bracket that starts `rest`, or 0.
size_t closing_mark_length(absl::string_view rest) {
  // ASCII, then U+2019, U+201D and U+00BB in UTF-8.
  for (absl::string_view mark : {"\"", "'", ")", "]", "}", "\xE2\x80\x99", "\xE2\x80\x9D", "\xC2\xBB"}) {
    if (absl::StartsWith(rest, mark)) return mark.size();
  }
  return 0;
}

// Calls fn(document_text) for every document of `path`.
template <typename Fn>
absl::Status for_each_document(const std::string& path, DocumentSplit split, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open input ", path, ": ", std::strerror(errno)));
  std::string line, document;
  auto flush = [&] {
    if (!document.empty()) fn(document);
    document.clear();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (split == DocumentSplit::kLine) {
      if (!blank) fn(line);
    } else if (blank) {
      flush();
    } else {
      if (!document.empty()) document += '\n';
      document += line;
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path, ": ", std::strerror(errno)));
  flush();
  return absl::OkStatus();
}

// Writes one split's documents into numbered shards of about `shard_tokens` tokens.
class ShardSequence {
 public:
  ShardSequence(std::string dir, uint32_t vocab_size, int64_t shard_tokens)
      : dir_(std::move(dir)), vocab_size_(vocab_size), shard_tokens_(shard_tokens) {}

  absl::Status add(const std::vector<int32_t>& ids) {
    if (!open_) {
      BF_RETURN_IF_ERROR(writer_.open(absl::StrFormat("%s/shard-%05d.zst", dir_, shards_), vocab_size_));
      open_ = true;
    }
    BF_RETURN_IF_ERROR(writer_.add_document(ids));
    if (static_cast<int64_t>(writer_.token_count()) >= shard_tokens_) return finish_shard();
    return absl::OkStatus();
  }
  absl::Status close() { return open_ ? finish_shard() : absl::OkStatus(); }
  int64_t shards() const { return shards_; }

 private:
  absl::Status finish_shard() {
    open_ = false;
    ++shards_;
    return writer_.close();
  }
  std::string dir_;
  uint32_t vocab_size_;
  int64_t shard_tokens_;
  ShardWriter writer_;
  bool open_ = false;
  int64_t shards_ = 0;
};

}  // namespace

std::vector<absl::string_view> split_sentences(absl::string_view text) {
  std::vector<absl::string_view> sentences;
  size_t start = 0;
  auto end_sentence = [&](size_t end) {
    absl::string_view sentence = text.substr(start, end - start);
    while (!sentence.empty() && is_break(sentence.front())) sentence.remove_prefix(1);
    while (!sentence.empty() && is_break(sentence.back())) sentence.remove_suffix(1);
    if (!sentence.empty()) sentences.push_back(sentence);
    start = end;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') {
      end_sentence(i);
    } else if (text[i] == '.' || text[i] == '!' || text[i] == '?') {
      size_t end = i + 1;
      while (const size_t mark = closing_mark_length(text.substr(end))) end += mark;
      if (end == text.size() || is_break(text[end])) end_sentence(end);
      i = end - 1;
    }
  }
  end_sentence(text.size());
  return sentences;
}

absl::StatusOr<CorpusPrepReport> prepare_corpus(const CorpusPrepConfig& config,
                                                const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  if (config.inputs.empty()) return absl::InvalidArgumentError("no input files");
  if (config.out_dir.empty()) return absl::InvalidArgumentError("no output directory");
  if (!(config.validation_fraction >= 0 && config.validation_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the validation fraction must be in [0, 1), got ", config.validation_fraction));
  }
  if (config.shard_tokens < 1) return absl::InvalidArgumentError("shard size must be at least 1 token");
  for (const std::string& input : config.inputs) {
    if (!std::filesystem::is_regular_file(input)) {
      return absl::NotFoundError(absl::StrCat("input ", input, " is not a readable file"));
    }
  }
  std::error_code error;
  for (const char* sub : {"train", "validation"}) {
    std::filesystem::create_directories(std::filesystem::path(config.out_dir) / sub, error);
    if (error) return absl::InternalError(absl::StrCat("cannot create ", config.out_dir, "/", sub, ": ", error.message()));
  }

  // The vocabulary: given, or learnt from the inputs; either way copied next to the shards.
  const std::string vocab_out = config.out_dir + "/vocab.txt";
  if (config.vocab_path.empty()) {
    say(absl::StrCat("learning a ", config.learned_vocab_size, "-token WordPiece vocabulary"));
    WordCounter counter;
    for (const std::string& input : config.inputs) BF_RETURN_IF_ERROR(counter.add_file(input));
    VocabBuilderOptions options;
    options.vocab_size = config.learned_vocab_size;
    BF_ASSIGN_OR_RETURN(const std::vector<std::string> tokens, build_wordpiece_vocab(counter, options));
    BF_RETURN_IF_ERROR(write_vocab(tokens, vocab_out));
  } else {
    std::filesystem::copy_file(config.vocab_path, vocab_out, std::filesystem::copy_options::overwrite_existing, error);
    if (error) return absl::InternalError(absl::StrCat("cannot copy ", config.vocab_path, ": ", error.message()));
  }
  BF_ASSIGN_OR_RETURN(const WordPieceTokenizer tokenizer, WordPieceTokenizer::load(vocab_out));

  CorpusPrepReport report;
  report.vocab_size = tokenizer.vocab_size();
  ShardSequence train(config.out_dir + "/train", tokenizer.vocab_size(), config.shard_tokens);
  ShardSequence validation(config.out_dir + "/validation", tokenizer.vocab_size(), config.shard_tokens);
  int64_t document_index = 0;
  absl::Status write_status;
  for (const std::string& input : config.inputs) {
    say(absl::StrCat("tokenizing ", input));
    BF_RETURN_IF_ERROR(for_each_document(input, config.split, [&](const std::string& text) {
      if (!write_status.ok()) return;
      const uint64_t i = static_cast<uint64_t>(document_index++);
      std::vector<std::vector<int32_t>> segments;
      for (absl::string_view piece : config.sentences ? split_sentences(text) : std::vector<absl::string_view>{text}) {
        std::vector<int32_t> ids = tokenizer.encode(piece);
        if (!ids.empty()) segments.push_back(std::move(ids));
      }
      if (segments.empty()) return;
      const bool held_out = philox_uniform(config.seed, kValidationStreamTag, i) < config.validation_fraction;
      (held_out ? report.validation_documents : report.train_documents) += 1;
      for (const std::vector<int32_t>& ids : segments) {
        for (int32_t id : ids) report.unknown_tokens += id == tokenizer.unk_id();
        (held_out ? report.validation_segments : report.train_segments) += 1;
        (held_out ? report.validation_tokens : report.train_tokens) += static_cast<int64_t>(ids.size());
        write_status = (held_out ? validation : train).add(ids);
        if (!write_status.ok()) return;
      }
      if (document_index % 100000 == 0) {
        say(absl::StrCat(document_index, " documents, ", report.train_tokens + report.validation_tokens, " tokens"));
      }
    }));
    BF_RETURN_IF_ERROR(write_status);
  }
  BF_RETURN_IF_ERROR(train.close());
  BF_RETURN_IF_ERROR(validation.close());
  if (report.train_documents == 0) {
    return absl::InvalidArgumentError("the inputs hold no training document (empty files?)");
  }
  report.shards = train.shards() + validation.shards();
  return report;
}

}  // namespace bertforge
