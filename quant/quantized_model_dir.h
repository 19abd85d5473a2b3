// quant/quantized_model_dir.h — the directory bert_quant writes: one self-contained quantized model.
//
//   DIR/model.safetensors        the weights: codes + scales, schemes in __metadata__ (quant/quantized_checkpoint.h)
//   DIR/model.activations.json   how activations are quantized (quant/quantized_model.h)
//   DIR/config.json              the model's BertConfig
//   DIR/vocab.txt                its WordPiece vocabulary
//   DIR/quant_report.json        how it was made and how close it stays to FP (bert_quant's --json object)
//
// so `--checkpoint DIR` works wherever a checkpoint directory does (train/checkpoint_paths.h: DIR/model.safetensors
// and DIR/config.json; bert_embed's vocab: DIR/vocab.txt).
//
// Before any work, check_quantized_model_dir says whether DIR may be written:
//   - a path ending in ".safetensors" is refused (--out used to name the model file; it now names the directory);
//   - a path whose existing part is a file, or whose nearest existing directory cannot be written, is refused;
//   - a new or empty directory is written;
//   - a previous bert_quant output (its model.safetensors is quantized, or it has no model.safetensors but has
//     quant_report.json: what an interrupted publish leaves) is replaced: bert_quant's files in it are rewritten,
//     other files are left alone;
//   - any other non-empty directory (another model, a run, data) is refused unless `overwrite`; then bert_quant's
//     files in it are replaced and the others left alone.
//
// StagedModelDir then writes the files into a staging directory inside DIR (DIR/.bert_quant-partial-<pid>/; those
// of crashed runs are removed, and ignored by the check) and publish() moves them into place: a failure before
// publish leaves DIR as it was (the destructor removes the staging directory). Two runs writing into one DIR at
// once are not supported. Publishing deletes the old model.safetensors first and moves the new one in last, so no
// moment pairs new sidecar files with old weights: an interrupted publish leaves DIR without model.safetensors
// (loading it fails with that message) and with quant_report.json (so the next run recognises it as its own).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bertforge::quant {

inline constexpr const char* kQuantizedWeightsFile = "model.safetensors";
inline constexpr const char* kQuantizedActivationsFile = "model.activations.json";  // activation_spec_path's name
inline constexpr const char* kQuantizedConfigFile = "config.json";
inline constexpr const char* kQuantizedVocabFile = "vocab.txt";
inline constexpr const char* kQuantReportFile = "quant_report.json";
// Every file the directory may hold, in publish order (the weights last).
inline constexpr const char* kQuantizedModelFiles[] = {kQuantReportFile, kQuantizedActivationsFile,
                                                       kQuantizedConfigFile, kQuantizedVocabFile,
                                                       kQuantizedWeightsFile};

struct QuantizedModelDirCheck {
  bool exists = false;           // DIR exists (a directory)
  bool previous_output = false;  // DIR holds a previous bert_quant output, which will be replaced
  std::vector<std::string> other_files;  // what else DIR holds (left alone; non-empty only with `overwrite`)
};

// Whether `dir` may receive a quantized model (see the file comment); InvalidArgument (or FailedPrecondition for
// a directory that cannot be written) with a message naming --out and what to do. Changes nothing on disk.
absl::StatusOr<QuantizedModelDirCheck> check_quantized_model_dir(const std::string& dir, bool overwrite);

// The files of one quantized model, written into a staging directory, then published into DIR. Move-only.
class StagedModelDir {
 public:
  // Creates DIR (and its parents) if needed and a fresh staging directory in it (removing those that crashed
  // runs left).
  static absl::StatusOr<StagedModelDir> create(const std::string& dir);
  StagedModelDir(StagedModelDir&& other) noexcept;
  StagedModelDir& operator=(StagedModelDir&& other) noexcept;
  StagedModelDir(const StagedModelDir&) = delete;
  StagedModelDir& operator=(const StagedModelDir&) = delete;
  ~StagedModelDir();  // removes the staging directory and what it holds unless published

  // Where to write `file` (one of kQuantizedModelFiles) before publish().
  std::string path(absl::string_view file) const;
  const std::string& dir() const { return dir_; }

  // Moves the staged files into DIR (the old weights deleted first, the new ones moved last), deletes bert_quant
  // files of DIR that were not staged, fsyncs DIR and removes the staging directory. Needs model.safetensors staged.
  absl::Status publish();

 private:
  StagedModelDir(std::string dir, std::string staging) : dir_(std::move(dir)), staging_(std::move(staging)) {}
  void discard();  // removes the staging directory, if any
  std::string dir_, staging_;  // staging_ is empty once published or moved from
};

}  // namespace bertforge::quant
