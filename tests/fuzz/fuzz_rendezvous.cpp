// Fuzzes the rendezvous file that rank 0 publishes for ranks started without MPI (train/rendezvous.h), through
// parse_rendezvous_file, which every other rank's file_rendezvous applies to the file it reads.
// Properties: a refusal is a Status with a message; an accepted file's payload came from whole hex pairs; and on
// the writer's side, the input taken as a payload round-trips through format_rendezvous_file (an empty one too).
#include <cstdint>

#include "tests/fuzz/fuzz_support.h"
#include "train/rendezvous.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bertforge::RendezvousFile;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<RendezvousFile> written =
      bertforge::parse_rendezvous_file("fuzz.rendezvous", bertforge::format_rendezvous_file({"job.7", 3, text}));
  FUZZ_CHECK(written.ok() && written->payload == text && written->job_id == "job.7" && written->world_size == 3);

  absl::StatusOr<RendezvousFile> file = bertforge::parse_rendezvous_file("fuzz.rendezvous", text);
  if (bertforge::fuzz::refused(file.status())) return 0;
  FUZZ_CHECK(2 * file->payload.size() <= size);
  return 0;
}
