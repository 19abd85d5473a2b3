// The JSONL metrics log (append, resume truncation) and the progress line.
#include "train/metrics_log.h"

#include <gtest/gtest.h>

#include "core/file_io.h"
#include "tests/support/test_support.h"

namespace bertforge {
namespace {

class Metrics : public test_support::TempDirTest {
 protected:
  Metrics() : TempDirTest("metrics") {}

  static Json record(int64_t step, double loss) {
    Json r = Json::object();
    r.set("step", step);
    r.set("loss", loss);
    return r;
  }
};

TEST_F(Metrics, WritesOneObjectPerLine) {
  const std::string log_path = path("metrics.jsonl");
  {
    MetricsLog log;
    ASSERT_TRUE(log.open(log_path).ok());
    ASSERT_TRUE(log.write(record(1, 10.5)).ok());
    ASSERT_TRUE(log.write(record(2, 9.25)).ok());
  }
  EXPECT_EQ(*read_file(log_path), "{\"step\":1,\"loss\":10.5}\n{\"step\":2,\"loss\":9.25}\n");
}

TEST_F(Metrics, ResumeDropsLinesAfterTheCheckpointStep) {
  const std::string log_path = path("metrics.jsonl");
  // Steps 1..4 were logged, the last line cut short by a crash; the run resumes from step 2.
  ASSERT_TRUE(write_file_atomic(log_path, "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2}\n"
                                          "{\"step\":3,\"loss\":1}\n{\"step\":4,\"lo")
                  .ok());
  MetricsLog log;
  ASSERT_TRUE(log.open(log_path, /*resume_step=*/2).ok());
  ASSERT_TRUE(log.write(record(3, 1.5)).ok());
  EXPECT_EQ(*read_file(log_path), "{\"step\":1,\"loss\":3}\n{\"step\":2,\"loss\":2}\n{\"step\":3,\"loss\":1.5}\n");
}

TEST_F(Metrics, OpenFailsClearly) {
  MetricsLog log;
  absl::Status status = log.open(path("missing_dir/metrics.jsonl"));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("missing_dir"), absl::string_view::npos) << status;
}

TEST(ProgressLine, ShowsStepLossAndEta) {
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(133), "2m13s");
  EXPECT_EQ(format_duration(3 * 3600 + 5 * 60 + 9), "3h05m");
  EXPECT_EQ(progress_line(120, 1000, 5.43214, 1e-4, 1.234, 5400, 0.5),
            "step 120/1000  loss 5.4321  lr 1.00e-04  |g| 1.23  5400 tok/s  ETA 7m20s");
}

}  // namespace
}  // namespace bertforge
