// How ranks that no MPI launcher started find each other (torchrun-style RANK / WORLD_SIZE, or srun without
// --mpi): through a file on storage that every rank sees (a shared filesystem across nodes, any path on one
// node). Rank 0 publishes a small payload in it (the NCCL unique id); every other rank waits for the file,
// checks that it belongs to the same job and world size, takes the payload and acknowledges; rank 0 waits for
// every acknowledgement and removes the files, so that the next run can use the same path.
//
//   <path>              written by rank 0, atomically and only if absent: "bertforge-rendezvous 1", then
//                       "job <id>", "world_size <N>", "payload <hex>", one per line
//   <path>.ack.<rank>   written by rank <rank> once it has read <path>
//
// Nothing waits forever: each side gives up after the timeout with a message naming what it waited for.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace bertforge {

struct FileRendezvousOptions {
  std::string path;         // the rendezvous file
  int rank = 0;             // in [0, world_size)
  int world_size = 1;
  std::string job_id;       // this launch (e.g. SLURM_JOB_ID.SLURM_STEP_ID), or empty; a file of another job is stale
  double timeout_seconds = 300;
};

// The contents of a rendezvous file (what rank 0 writes at <path>).
struct RendezvousFile {
  std::string job_id;  // empty when rank 0 had none
  int world_size = 0;
  std::string payload;
};

// The text rank 0 writes at <path> (the format above), and its parser; `path` names the file in errors
// (absl::DataLossError when damaged).
std::string format_rendezvous_file(const RendezvousFile& file);
absl::StatusOr<RendezvousFile> parse_rendezvous_file(const std::string& path, const std::string& text);

// Rank 0 publishes `payload` and returns it once every rank has it; another rank returns rank 0's payload
// (its own `payload` argument is ignored). Errors: the file exists when rank 0 starts (a previous run that did
// not finish, or another job on the same path), a world size or file format that does not match, the timeout.
absl::StatusOr<std::string> file_rendezvous(const FileRendezvousOptions& options, const std::string& payload);

}  // namespace bertforge
