// bert_embed's files (train/embedding_io.h): the sentence list and its errors, embeddings written and read back
// as .npy (byte layout checked against NumPy's format 1.0) and .safetensors, and the vocabulary's default place.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "core/file_io.h"
#include "core/safetensors.h"
#include "tests/support/test_support.h"
#include "train/embedding_io.h"

namespace bertforge {
namespace {

using namespace test_support;

class EmbeddingIo : public TempDirTest {
 protected:
  EmbeddingIo() : TempDirTest("embedding_io") {}

  std::string write(const std::string& name, const std::string& bytes) {
    const absl::Status status = write_file_atomic(path(name), bytes);
    BF_CHECK(status.ok(), status.ToString());
    return path(name);
  }
  std::string error_of(const absl::StatusOr<std::vector<std::string>>& result) {
    EXPECT_FALSE(result.ok());
    return result.ok() ? std::string() : std::string(result.status().message());
  }
};

TEST_F(EmbeddingIo, ReadsOneSentencePerLine) {
  const absl::StatusOr<std::vector<std::string>> crlf =
      read_sentences(write("a.txt", "Hello, world.\r\nCaf\xc3\xa9 !\n"));
  ASSERT_TRUE(crlf.ok()) << crlf.status();
  EXPECT_EQ(*crlf, (std::vector<std::string>{"Hello, world.", "Caf\xc3\xa9 !"}));
  const absl::StatusOr<std::vector<std::string>> no_final_newline = read_sentences(write("b.txt", "one\ntwo"));
  ASSERT_TRUE(no_final_newline.ok()) << no_final_newline.status();
  EXPECT_EQ(*no_final_newline, (std::vector<std::string>{"one", "two"}));
}

TEST_F(EmbeddingIo, RejectsEmptyLinesAndEmptyFiles) {
  const std::string empty_line = error_of(read_sentences(write("a.txt", "one\n\ntwo\n \t\nthree\n")));
  EXPECT_TRUE(absl::StrContains(empty_line, "line 2 is empty (2 empty lines in all)")) << empty_line;
  const std::string empty_file = error_of(read_sentences(write("b.txt", "")));
  EXPECT_TRUE(absl::StrContains(empty_file, "holds no sentences")) << empty_file;
  const std::string missing = error_of(read_sentences(path("missing.txt")));
  EXPECT_TRUE(absl::StrContains(missing, "missing.txt")) << missing;
  const std::string directory = error_of(read_sentences(dir_));
  EXPECT_TRUE(absl::StrContains(directory, "is a directory")) << directory;
}

TEST_F(EmbeddingIo, NpyHasNumpysLayoutAndReadsBack) {
  const Tensor embeddings = Tensor::from_vector<float>({1, -2, 3.5f, 0.25f, 5, 6}, {2, 3});
  ASSERT_TRUE(write_embeddings(path("e.npy"), embeddings).ok());
  const absl::StatusOr<std::string> bytes = read_file(path("e.npy"));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  // magic, version 1.0, header length 118 (little-endian), the header dict, spaces, '\n' at byte 127.
  ASSERT_EQ(bytes->size(), 128u + 6 * 4);
  EXPECT_EQ(bytes->substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes->substr(8, 2), std::string("\x76\x00", 2));
  EXPECT_TRUE(absl::StartsWith(bytes->substr(10), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }  "));
  EXPECT_EQ((*bytes)[127], '\n');
  float first;
  std::memcpy(&first, bytes->data() + 128, sizeof(first));
  EXPECT_EQ(first, 1.0f);

  const absl::StatusOr<Tensor> back = read_embeddings(path("e.npy"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape(), embeddings.shape());
  EXPECT_EQ(back->to_float_vector(), embeddings.to_float_vector());
}

TEST_F(EmbeddingIo, SafetensorsHoldsOneEmbeddingsTensor) {
  const Tensor embeddings = random_tensor({5, 4}, 1);
  ASSERT_TRUE(write_embeddings(path("e.safetensors"), embeddings).ok());
  const absl::StatusOr<SafetensorsFile> file = read_safetensors(path("e.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->tensors.size(), 1u);
  EXPECT_EQ(file->tensors[0].first, "embeddings");
  const absl::StatusOr<Tensor> back = read_embeddings(path("e.safetensors"));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->to_float_vector(), embeddings.to_float_vector());
}

TEST_F(EmbeddingIo, RejectsUnknownExtensionsAndForeignFiles) {
  const absl::Status status = write_embeddings(path("e.csv"), random_tensor({2, 2}, 2));
  EXPECT_TRUE(absl::StrContains(status.message(), "use .safetensors or .npy")) << status;
  EXPECT_FALSE(std::filesystem::exists(path("e.csv")));

  // A float64 .npy (what numpy.save writes for a default array), a file with a foreign tensor name, a short one.
  const auto npy = [](const std::string& descr, size_t data_bytes) {
    std::string bytes = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + "{'descr': '" + descr +
                        "', 'fortran_order': False, 'shape': (1, 2), }";
    return bytes + std::string(127 - bytes.size(), ' ') + "\n" + std::string(data_bytes, '\0');
  };
  const absl::StatusOr<Tensor> f64 = read_embeddings(write("f8.npy", npy("<f8", 16)));
  ASSERT_FALSE(f64.ok());
  EXPECT_TRUE(absl::StrContains(f64.status().message(), "dtype '<f8'")) << f64.status();
  const absl::StatusOr<Tensor> truncated = read_embeddings(write("short.npy", npy("<f4", 7)));
  ASSERT_FALSE(truncated.ok());
  EXPECT_TRUE(absl::StrContains(truncated.status().message(), "7 data bytes")) << truncated.status();
  ASSERT_TRUE(read_embeddings(write("ok.npy", npy("<f4", 8))).ok());
  ASSERT_TRUE(write_safetensors(path("other.safetensors"), {{"weights", random_tensor({2, 2}, 3)}}).ok());
  const absl::StatusOr<Tensor> other = read_embeddings(path("other.safetensors"));
  ASSERT_FALSE(other.ok());
  EXPECT_TRUE(absl::StrContains(other.status().message(), "\"embeddings\"")) << other.status();
}

TEST_F(EmbeddingIo, VocabDefaultsToTheModelsDirectory) {
  std::filesystem::create_directories(path("run/checkpoints/step-1"));
  const CheckpointPaths paths{path("run/checkpoints/step-1/model.safetensors"),
                              {path("run/checkpoints/step-1/config.json"), path("run/config.json")}};
  absl::StatusOr<std::string> vocab = resolve_vocab_path(paths, "");
  ASSERT_FALSE(vocab.ok());
  EXPECT_TRUE(absl::StrContains(vocab.status().message(), "give --vocab")) << vocab.status();
  write("run/vocab.txt", "[PAD]\n");
  vocab = resolve_vocab_path(paths, "");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  EXPECT_EQ(*vocab, path("run/vocab.txt"));
  write("run/checkpoints/step-1/vocab.txt", "[PAD]\n");
  EXPECT_EQ(*resolve_vocab_path(paths, ""), path("run/checkpoints/step-1/vocab.txt"));
  EXPECT_EQ(*resolve_vocab_path(paths, "mine.txt"), "mine.txt");
}

}  // namespace
}  // namespace bertforge
