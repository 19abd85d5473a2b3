// The file rendezvous (train/rendezvous.h) between real processes: forked ranks meet through a file in a fresh
// directory, and every failure (a rank that never comes, a mismatched world size, a stale file) is an error
// within the timeout, not a hang.
#include "train/rendezvous.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/file_io.h"

namespace bertforge {
namespace {

namespace fs = std::filesystem;

std::string fresh_directory(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("rendezvous_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// A binary payload, NUL bytes and all, like an ncclUniqueId.
std::string payload() {
  std::string bytes(128, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 37 + 11) % 256);
  return bytes;
}

// Runs file_rendezvous as `options.rank` in a child process; the child exits 0 when it got `expected`, 2 when
// the rendezvous failed, 3 when it got something else.
pid_t spawn_rank(const FileRendezvousOptions& options, const std::string& expected) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const absl::StatusOr<std::string> got = file_rendezvous(options, "ignored");
    std::_Exit(!got.ok() ? 2 : *got == expected ? 0 : 3);
  }
  return pid;
}

int exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FileRendezvous, EveryRankGetsRankZerosPayloadAndTheFilesAreRemoved) {
  const std::string dir = fresh_directory("ok");
  FileRendezvousOptions options{dir + "/id", 0, 4, "job7", 30};
  std::vector<pid_t> others;
  for (int rank = 1; rank < 4; ++rank) {
    FileRendezvousOptions other = options;
    other.rank = rank;
    others.push_back(spawn_rank(other, payload()));
  }
  const absl::StatusOr<std::string> got = file_rendezvous(options, payload());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, payload());
  for (pid_t pid : others) EXPECT_EQ(exit_code(pid), 0);
  EXPECT_TRUE(fs::is_empty(dir)) << "rank 0 leaves no file behind";
  // So the same path serves the next run.
  options.world_size = 2;
  FileRendezvousOptions second = options;
  second.rank = 1;
  const pid_t pid = spawn_rank(second, "again");
  EXPECT_EQ(file_rendezvous(options, "again").value_or(""), "again");
  EXPECT_EQ(exit_code(pid), 0);
}

// An acknowledgement left by an earlier failed run does not stand in for a rank of this one.
TEST(FileRendezvous, StaleAcknowledgementsDoNotCount) {
  const std::string dir = fresh_directory("stale_ack");
  ASSERT_TRUE(write_file_atomic(dir + "/id.ack.1", "").ok());
  const absl::StatusOr<std::string> got = file_rendezvous({dir + "/id", 0, 2, "", 0.3}, payload());
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("rank(s) 1 of 2"), absl::string_view::npos) << got.status();
}

TEST(FileRendezvous, ARankThatNeverComesIsAnErrorWithinTheTimeout) {
  const std::string dir = fresh_directory("missing");
  const absl::StatusOr<std::string> got = file_rendezvous({dir + "/id", 0, 3, "", 0.3}, payload());
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(got.status().message().find("rank(s) 1, 2 of 3"), absl::string_view::npos) << got.status();
  EXPECT_TRUE(fs::is_empty(dir));
  // And a rank whose rank 0 never publishes.
  const absl::StatusOr<std::string> follower = file_rendezvous({dir + "/id", 2, 3, "", 0.3}, "");
  ASSERT_FALSE(follower.ok());
  EXPECT_NE(follower.status().message().find("rank 0 did not publish"), absl::string_view::npos)
      << follower.status();
}

TEST(FileRendezvous, AMismatchedWorldSizeIsAnError) {
  const std::string dir = fresh_directory("world");
  FileRendezvousOptions leader{dir + "/id", 0, 2, "", 1.5};
  const pid_t pid = ::fork();
  if (pid == 0) std::_Exit(file_rendezvous(leader, payload()).ok() ? 0 : 2);
  const absl::StatusOr<std::string> got = file_rendezvous({dir + "/id", 1, 3, "", 5}, "");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("mismatched world size: rank 0 has 2 ranks, rank 1 was started with 3"),
            absl::string_view::npos)
      << got.status();
  EXPECT_EQ(exit_code(pid), 2);  // rank 0 then times out waiting for rank 1
}

TEST(FileRendezvous, AStaleFileIsRefused) {
  const std::string dir = fresh_directory("stale");
  ASSERT_TRUE(write_file_atomic(dir + "/id", "bertforge-rendezvous 1\njob old\nworld_size 2\npayload 00ff\n").ok());
  const absl::StatusOr<std::string> leader = file_rendezvous({dir + "/id", 0, 2, "new", 5}, payload());
  ASSERT_FALSE(leader.ok());
  EXPECT_EQ(leader.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(leader.status().message().find("remove it"), absl::string_view::npos) << leader.status();
  // A rank of the new job does not take the old job's payload.
  const absl::StatusOr<std::string> follower = file_rendezvous({dir + "/id", 1, 2, "new", 0.3}, "");
  ASSERT_FALSE(follower.ok());
  EXPECT_NE(follower.status().message().find("from job old, not this job (new)"), absl::string_view::npos)
      << follower.status();
  // A damaged file is named as such.
  ASSERT_TRUE(write_file_atomic(dir + "/id", "bertforge-rendezvous 1\njob old\nworld_size two\n").ok());
  const absl::StatusOr<std::string> damaged = file_rendezvous({dir + "/id", 1, 2, "new", 0.3}, "");
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
}

TEST(FileRendezvous, RejectsBadOptions) {
  EXPECT_FALSE(file_rendezvous({"", 0, 2, "", 1}, "").ok());
  EXPECT_FALSE(file_rendezvous({"/tmp/x", 2, 2, "", 1}, "").ok());
  EXPECT_FALSE(file_rendezvous({"/tmp/x", 0, 2, "", 0}, "").ok());
  EXPECT_EQ(file_rendezvous({"/nonexistent/x", 0, 1, "", 1}, "alone").value_or(""), "alone");
}

// The file's text round-trips, an empty job id written as "-" and an empty payload too (it was refused as damaged
// before); damaged text, a file cut short included, is a DataLoss error naming the file.
TEST(FileRendezvous, FileFormatRoundTripsAndRejectsDamage) {
  for (const RendezvousFile& file : {RendezvousFile{"4242.0", 4, std::string("id\0\xff", 4)},
                                     RendezvousFile{"", 2, ""}}) {
    absl::StatusOr<RendezvousFile> parsed = parse_rendezvous_file("rdv", format_rendezvous_file(file));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(parsed->job_id, file.job_id);
    EXPECT_EQ(parsed->world_size, file.world_size);
    EXPECT_EQ(parsed->payload, file.payload);
  }
  for (const char* damaged : {"", "bertforge-rendezvous 1\njob -\nworld_size 2\npayload abc\n",
                              "bertforge-rendezvous 1\njob -\nworld_size 99999999999\npayload ab\n",
                              "bertforge-rendezvous 2\njob -\nworld_size 2\npayload ab\n",
                              "bertforge-rendezvous 1\njob -\nworld_size 2\npayload ab",  // cut short
                              "bertforge-rendezvous 1\njob -\nworld_size 2\npayload ab\nmore\n"}) {
    absl::StatusOr<RendezvousFile> parsed = parse_rendezvous_file("rdv", damaged);
    ASSERT_FALSE(parsed.ok()) << damaged;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(parsed.status().message().find("rdv is not a bertforge rendezvous file"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace bertforge
