// Json: strict recursive-descent parser, serializer, accessors and builders.
#include "core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"

namespace bertforge {
namespace {

const char* type_name(Json::Type type) {
  switch (type) {
    case Json::Type::kNull: return "null";
    case Json::Type::kBool: return "bool";
    case Json::Type::kNumber: return "number";
    case Json::Type::kString: return "string";
    case Json::Type::kArray: return "array";
    case Json::Type::kObject: return "object";
  }
  return "invalid";
}

// Appends code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8.
void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length of the well-formed UTF-8 sequence starting at text[pos], or 0 if the
// bytes there are not one (Unicode Table 3-7: no overlong forms, no
// surrogates, nothing above U+10FFFF).
size_t utf8_sequence_length(absl::string_view text, size_t pos) {
  const unsigned char lead = static_cast<unsigned char>(text[pos]);
  size_t length = 0;
  unsigned char second_lo = 0x80, second_hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_lo = 0xA0;  // overlong below U+0800
    if (lead == 0xED) second_hi = 0x9F;  // U+D800..U+DFFF are surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_lo = 0x90;  // overlong below U+10000
    if (lead == 0xF4) second_hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (pos + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    const unsigned char c = static_cast<unsigned char>(text[pos + k]);
    const unsigned char lo = k == 1 ? second_lo : 0x80, hi = k == 1 ? second_hi : 0xBF;
    if (c < lo || c > hi) return 0;
  }
  return length;
}

// Recursive descent over the RFC 8259 grammar; `pos_` is the next byte.
class Parser {
 public:
  explicit Parser(absl::string_view text) : text_(text) {}

  absl::StatusOr<Json> parse_document() {
    skip_whitespace();
    BF_ASSIGN_OR_RETURN(Json value, parse_value(0));
    skip_whitespace();
    if (pos_ != text_.size()) return error_at(pos_, "unexpected data after the JSON value");
    return value;
  }

 private:
  absl::Status error_at(size_t pos, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON parse error at byte ", pos, ": ", what));
  }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek() const { return text_[pos_]; }

  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }

  // `depth` counts the arrays and objects enclosing this value.
  absl::StatusOr<Json> parse_value(int depth) {
    if (at_end()) return error_at(pos_, "unexpected end of input, expected a value");
    switch (peek()) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': {
        BF_ASSIGN_OR_RETURN(std::string s, parse_string());
        return Json(std::move(s));
      }
      case 't': return parse_literal("true", Json(true));
      case 'f': return parse_literal("false", Json(false));
      case 'n': return parse_literal("null", Json());
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number();
        return error_at(pos_, absl::StrFormat("unexpected character '%c', expected a value", peek()));
    }
  }

  absl::StatusOr<Json> parse_literal(absl::string_view word, Json value) {
    if (text_.substr(pos_, word.size()) != word) return error_at(pos_, "invalid literal");
    pos_ += word.size();
    return value;
  }

  absl::StatusOr<Json> parse_object(int depth) {
    const size_t start = pos_;
    if (depth > Json::kMaxDepth) return error_at(start, absl::StrCat("nesting deeper than ", Json::kMaxDepth));
    ++pos_;  // '{'
    Json::Object members;
    skip_whitespace();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return Json(std::move(members));
    }
    while (true) {
      if (at_end() || peek() != '"') return error_at(pos_, "expected a string key");
      BF_ASSIGN_OR_RETURN(std::string key, parse_string());
      skip_whitespace();
      if (at_end() || peek() != ':') return error_at(pos_, "expected ':' after an object key");
      ++pos_;
      skip_whitespace();
      BF_ASSIGN_OR_RETURN(Json value, parse_value(depth));
      members.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        skip_whitespace();
        continue;
      }
      if (!at_end() && peek() == '}') {
        ++pos_;
        break;
      }
      return error_at(pos_, "expected ',' or '}' in an object");
    }
    // Duplicate keys: sort pointers to the keys and compare neighbours.
    std::vector<const std::string*> keys;
    keys.reserve(members.size());
    for (const auto& member : members) keys.push_back(&member.first);
    std::sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) { return *a < *b; });
    for (size_t k = 1; k < keys.size(); ++k) {
      if (*keys[k] == *keys[k - 1]) {
        return error_at(start, absl::StrCat("duplicate key \"", *keys[k], "\" in the object that starts here"));
      }
    }
    return Json(std::move(members));
  }

  absl::StatusOr<Json> parse_array(int depth) {
    if (depth > Json::kMaxDepth) return error_at(pos_, absl::StrCat("nesting deeper than ", Json::kMaxDepth));
    ++pos_;  // '['
    Json::Array elements;
    skip_whitespace();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return Json(std::move(elements));
    }
    while (true) {
      BF_ASSIGN_OR_RETURN(Json value, parse_value(depth));
      elements.push_back(std::move(value));
      skip_whitespace();
      if (!at_end() && peek() == ',') {
        ++pos_;
        skip_whitespace();
        continue;
      }
      if (!at_end() && peek() == ']') {
        ++pos_;
        return Json(std::move(elements));
      }
      return error_at(pos_, "expected ',' or ']' in an array");
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? , then converted exactly by from_chars.
  absl::StatusOr<Json> parse_number() {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t first = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - first;
    };
    if (peek() == '-') ++pos_;
    if (!at_end() && peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') return error_at(start, "number with a leading zero");
    } else if (digits() == 0) {
      return error_at(pos_, "expected a digit");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) return error_at(pos_, "expected a digit after '.'");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) return error_at(pos_, "expected a digit in the exponent");
    }
    double value = 0;
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    const std::from_chars_result result = std::from_chars(first, last, value);
    if (result.ec != std::errc() || result.ptr != last) {
      return error_at(start, absl::StrCat("number ", absl::string_view(first, last - first),
                                          " is out of the range of a double"));
    }
    return Json(value);
  }

  // Four hex digits of a \u escape.
  absl::StatusOr<uint32_t> parse_hex4() {
    if (pos_ + 4 > text_.size()) return error_at(pos_, "truncated \\u escape");
    uint32_t value = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text_[pos_ + k];
      uint32_t digit;
      if (c >= '0' && c <= '9') digit = c - '0';
      else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      else return error_at(pos_ + k, "invalid hex digit in \\u escape");
      value = value * 16 + digit;
    }
    pos_ += 4;
    return value;
  }

  // After "\u": one code point, combining a UTF-16 surrogate pair when present.
  absl::StatusOr<uint32_t> parse_unicode_escape() {
    const size_t start = pos_ - 2;
    BF_ASSIGN_OR_RETURN(uint32_t unit, parse_hex4());
    if (unit >= 0xDC00 && unit <= 0xDFFF) return error_at(start, "lone low surrogate in \\u escape");
    if (unit < 0xD800 || unit > 0xDBFF) return unit;
    if (text_.substr(pos_, 2) != "\\u") return error_at(start, "high surrogate not followed by a \\u escape");
    pos_ += 2;
    BF_ASSIGN_OR_RETURN(uint32_t low, parse_hex4());
    if (low < 0xDC00 || low > 0xDFFF) return error_at(start, "high surrogate not followed by a low surrogate");
    return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
  }

  absl::StatusOr<std::string> parse_string() {
    const size_t start = pos_;
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (at_end()) return error_at(start, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) return error_at(pos_, "unescaped control character in a string");
      if (c == '\\') {
        if (pos_ + 1 >= text_.size()) return error_at(start, "unterminated string");
        const char escape = text_[pos_ + 1];
        pos_ += 2;
        switch (escape) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            BF_ASSIGN_OR_RETURN(uint32_t cp, parse_unicode_escape());
            append_utf8(out, cp);
            break;
          }
          default: return error_at(pos_ - 2, absl::StrFormat("invalid escape '\\%c'", escape));
        }
        continue;
      }
      if (c < 0x80) {
        out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      const size_t length = utf8_sequence_length(text_, pos_);
      if (length == 0) return error_at(pos_, "invalid UTF-8 in a string");
      out.append(text_.data() + pos_, length);
      pos_ += length;
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

void append_escaped(std::string& out, const std::string& s) {
  out += '"';
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(ch));
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

void append_number(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
  } else if (x == std::trunc(x) && std::fabs(x) < 1e18) {
    absl::StrAppend(&out, static_cast<int64_t>(x));
  } else {
    char buffer[32];
    const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), x);
    out.append(buffer, result.ptr);
  }
}

}  // namespace

absl::StatusOr<Json> Json::parse(absl::string_view text) { return Parser(text).parse_document(); }

// ---- Serialization ---------------------------------------------------------------------

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

void Json::dump_to(std::string& out, int indent, int depth) const {
  // Pretty printing starts each element on a new line, `level` indents deep.
  auto newline = [&](int level) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  };
  switch (type()) {
    case Type::kNull: out += "null"; break;
    case Type::kBool: out += std::get<bool>(value_) ? "true" : "false"; break;
    case Type::kNumber: append_number(out, std::get<double>(value_)); break;
    case Type::kString: append_escaped(out, std::get<std::string>(value_)); break;
    case Type::kArray: {
      const Array& elements = std::get<Array>(value_);
      out += '[';
      for (size_t k = 0; k < elements.size(); ++k) {
        if (k > 0) out += ',';
        newline(depth + 1);
        elements[k].dump_to(out, indent, depth + 1);
      }
      if (!elements.empty()) newline(depth);
      out += ']';
      break;
    }
    case Type::kObject: {
      const Object& members = std::get<Object>(value_);
      out += '{';
      for (size_t k = 0; k < members.size(); ++k) {
        if (k > 0) out += ',';
        newline(depth + 1);
        append_escaped(out, members[k].first);
        out += indent < 0 ? ":" : ": ";
        members[k].second.dump_to(out, indent, depth + 1);
      }
      if (!members.empty()) newline(depth);
      out += '}';
      break;
    }
  }
}

// ---- Accessors ---------------------------------------------------------------------------

bool Json::is_int64() const {
  if (!is_number()) return false;
  const double x = std::get<double>(value_);
  return x == std::trunc(x) && x >= -9223372036854775808.0 && x < 9223372036854775808.0;
}

bool Json::as_bool() const {
  BF_CHECK(is_bool(), "Json::as_bool() on a ", type_name(type()));
  return std::get<bool>(value_);
}

double Json::as_number() const {
  BF_CHECK(is_number(), "Json::as_number() on a ", type_name(type()));
  return std::get<double>(value_);
}

int64_t Json::as_int64() const {
  BF_CHECK(is_int64(), "Json::as_int64() on ", dump(), ", which is not an integer in the int64 range");
  return static_cast<int64_t>(std::get<double>(value_));
}

const std::string& Json::as_string() const {
  BF_CHECK(is_string(), "Json::as_string() on a ", type_name(type()));
  return std::get<std::string>(value_);
}

const Json::Array& Json::as_array() const {
  BF_CHECK(is_array(), "Json::as_array() on a ", type_name(type()));
  return std::get<Array>(value_);
}

const Json::Object& Json::as_object() const {
  BF_CHECK(is_object(), "Json::as_object() on a ", type_name(type()));
  return std::get<Object>(value_);
}

const Json* Json::get(absl::string_view key) const {
  if (!is_object()) return nullptr;
  for (const auto& [name, value] : std::get<Object>(value_)) {
    if (name == key) return &value;
  }
  return nullptr;
}

// ---- Builders ------------------------------------------------------------------------------

Json& Json::set(std::string key, Json value) {
  BF_CHECK(is_object(), "Json::set(\"", key, "\") on a ", type_name(type()));
  Object& members = std::get<Object>(value_);
  for (auto& member : members) {
    if (member.first == key) {
      member.second = std::move(value);
      return *this;
    }
  }
  members.emplace_back(std::move(key), std::move(value));
  return *this;
}

Json& Json::push_back(Json value) {
  BF_CHECK(is_array(), "Json::push_back on a ", type_name(type()));
  std::get<Array>(value_).push_back(std::move(value));
  return *this;
}

}  // namespace bertforge
