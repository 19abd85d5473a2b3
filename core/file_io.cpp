// POSIX implementation of whole-file reads, FileReader and AtomicFileWriter.
#include "core/file_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/check.h"

namespace bertforge {
namespace {

// "<what> <path>: <strerror(errno)>", with the status code that errno implies
// (NotFound for ENOENT, PermissionDenied for EACCES, ...).
absl::Status errno_error(absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

// The directory holding `path` ("." for a bare file name).
std::string parent_directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes a completed rename durable: the directory entry is data too.
absl::Status fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("cannot open directory", dir);
  const int rc = ::fsync(fd);
  const int saved_errno = errno;
  ::close(fd);
  errno = saved_errno;
  if (rc != 0) return errno_error("cannot fsync directory", dir);
  return absl::OkStatus();
}

}  // namespace

// ---- Whole files ---------------------------------------------------------------------

absl::StatusOr<std::string> read_file(const std::string& path) {
  FileReader reader;
  BF_RETURN_IF_ERROR(reader.open(path));
  std::string bytes(reader.size(), '\0');
  BF_RETURN_IF_ERROR(reader.read_at(0, bytes.data(), bytes.size()));
  return bytes;
}

absl::Status write_file_atomic(const std::string& path, absl::string_view bytes) {
  AtomicFileWriter writer;
  BF_RETURN_IF_ERROR(writer.open(path));
  BF_RETURN_IF_ERROR(writer.write(bytes));
  return writer.commit();
}

// ---- FileReader ------------------------------------------------------------------------

FileReader::~FileReader() { close(); }

FileReader::FileReader(FileReader&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), size_(other.size_) {}

FileReader& FileReader::operator=(FileReader&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    size_ = other.size_;
  }
  return *this;
}

void FileReader::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

absl::Status FileReader::open(const std::string& path) {
  close();
  path_ = path;
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return errno_error("cannot open", path);
  struct stat info;
  if (::fstat(fd_, &info) != 0) {
    absl::Status error = errno_error("cannot stat", path);
    close();
    return error;
  }
  if (!S_ISREG(info.st_mode)) {
    close();
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": not a regular file"));
  }
  size_ = static_cast<uint64_t>(info.st_size);
  return absl::OkStatus();
}

absl::StatusOr<size_t> FileReader::read(void* dst, size_t n) {
  BF_CHECK(fd_ >= 0, "FileReader::read before a successful open()");
  while (true) {
    const ssize_t got = ::read(fd_, dst, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) return errno_error("cannot read", path_);
  }
}

absl::Status FileReader::read_at(uint64_t offset, void* dst, size_t n) {
  BF_CHECK(fd_ >= 0, "FileReader::read_at before a successful open()");
  char* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd_, out + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return errno_error("cannot read", path_);
    if (got == 0) {
      return absl::DataLossError(absl::StrCat("cannot read ", path_, ": file ends at byte ", offset + done,
                                              ", expected ", n, " bytes from byte ", offset));
    }
    done += static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

// ---- AtomicFileWriter ----------------------------------------------------------------

AtomicFileWriter::~AtomicFileWriter() { abort(); }

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)) {}

AtomicFileWriter& AtomicFileWriter::operator=(AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    abort();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    temp_path_ = std::move(other.temp_path_);
  }
  return *this;
}

void AtomicFileWriter::abort() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_path_.c_str());
  fd_ = -1;
}

absl::Status AtomicFileWriter::open(const std::string& path) {
  abort();
  path_ = path;
  temp_path_ = absl::StrCat(path, ".tmp.", ::getpid());
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd_ < 0) return errno_error(absl::StrCat("cannot write ", path, ": cannot create temporary file"), temp_path_);
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::write(absl::string_view bytes) {
  BF_CHECK(fd_ >= 0, "AtomicFileWriter::write before open() or after commit()");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) {
      absl::Status error = errno_error("cannot write", temp_path_);
      abort();
      return error;
    }
    done += static_cast<size_t>(put);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::commit() {
  BF_CHECK(fd_ >= 0, "AtomicFileWriter::commit before open() or after commit()");
  if (::fsync(fd_) != 0) {
    absl::Status error = errno_error("cannot fsync", temp_path_);
    abort();
    return error;
  }
  const int close_rc = ::close(fd_);
  fd_ = -1;
  if (close_rc != 0 || ::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status error = errno_error(close_rc != 0 ? "cannot close" : "cannot rename into place", path_);
    ::unlink(temp_path_.c_str());
    return error;
  }
  return fsync_directory(parent_directory(path_));
}

}  // namespace bertforge
