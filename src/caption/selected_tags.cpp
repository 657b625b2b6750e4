// selected_tags.csv reading; see selected_tags.h.
#include "caption/selected_tags.h"

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/strings.h"
#include "core/utf8.h"

namespace ls::caption {
namespace {

struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;    // where the record starts, 1-based
  bool blank = false;  // an empty line (Python's csv.reader yields [] for it)
};

// RFC 4180 records as Python's csv.reader (excel dialect) reads them from a file opened in text
// mode, which is how kohya opens it: \n, \r\n and \r all end a line, also inside quotes (where
// they read as \n); "" inside quotes is one quote; a quote inside an unquoted field is literal.
class CsvReader {
 public:
  CsvReader(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  bool next(CsvRecord& out) {
    if (pos_ >= text_.size()) return false;
    out = CsvRecord{};
    out.line = line_;
    bool quoted_any = false;
    while (true) {
      std::string field;
      if (pos_ < text_.size() && text_[pos_] == '"') {
        quoted_any = true;
        read_quoted(field);
      } else {
        while (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end()) field += text_[pos_++];
      }
      out.fields.push_back(std::move(field));
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      skip_line_end();
      out.blank = !quoted_any && out.fields.size() == 1 && out.fields[0].empty();
      return true;
    }
  }

 private:
  bool at_line_end() const { return text_[pos_] == '\n' || text_[pos_] == '\r'; }

  void skip_line_end() {
    if (pos_ >= text_.size()) return;
    if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
    ++pos_;
    ++line_;
  }

  void read_quoted(std::string& field) {
    const int64_t opened = line_;
    ++pos_;
    while (true) {
      LS_CHECK(pos_ < text_.size(), file_, " line ", opened, ": unterminated quote (a field opened with \" is never closed)");
      const char c = text_[pos_];
      if (c == '"') {
        if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
          field += '"';
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\n' || c == '\r') {
        field += '\n';
        skip_line_end();
        continue;
      }
      field += c;
      ++pos_;
    }
    // Python's lenient reader would glue such text on; no tagger writes it, so it is a broken file.
    LS_CHECK(pos_ >= text_.size() || text_[pos_] == ',' || at_line_end(), file_, " line ", line_,
             ": text after a closing quote (a quote inside a quoted field is written \"\")");
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

// The first line that is not UTF-8, so the error can name it; 0 when all are.
int64_t first_bad_utf8_line(std::string_view text) {
  int64_t line = 1;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (!core::is_valid_utf8(text.substr(start, end - start))) return line;
    start = end + 1;
    ++line;
  }
  return 0;
}

int64_t column_of(const std::vector<std::string>& header, const std::string& name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int64_t>(i);
  return -1;
}

std::string joined(const std::vector<std::string>& fields) {
  std::string out;
  for (const std::string& f : fields) out += (out.empty() ? "" : ",") + f;
  return out;
}

}  // namespace

SelectedTags parse_selected_tags(std::string_view text, const std::string& file) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // pandas skips it; so do we
  if (const int64_t bad = first_bad_utf8_line(text); bad != 0)
    LS_FAIL(file, " line ", bad, ": not UTF-8 text");

  CsvReader reader(text, file);
  CsvRecord record;
  bool have_header = false;
  while (!have_header && reader.next(record)) have_header = !record.blank;
  LS_CHECK(have_header, file, ": empty file; expected the header tag_id,name,category,count");
  const std::vector<std::string> header = record.fields;
  const int64_t name_col = column_of(header, "name");
  const int64_t category_col = column_of(header, "category");
  const int64_t id_col = column_of(header, "tag_id");
  for (const char* required : {"name", "category"})
    LS_CHECK(column_of(header, required) >= 0, file, " line ", record.line, ": no '", required,
             "' column in the header '", joined(header), "' (expected tag_id,name,category,count)");

  SelectedTags tags;
  while (reader.next(record)) {
    if (record.blank) continue;
    const std::string where = file + " line " + std::to_string(record.line);
    LS_CHECK(record.fields.size() == header.size(), where, ": ", record.fields.size(), " fields, the header has ",
             header.size(), " (a name holding a comma must be quoted)");
    const std::string& name = record.fields[name_col];
    LS_CHECK(!name.empty(), where, ": empty tag name");
    int64_t category = 0;
    LS_CHECK(core::parse_int64(record.fields[category_col], category), where, ": category '",
             record.fields[category_col], "' is not a whole number");
    int64_t id = -1;
    if (id_col >= 0)
      LS_CHECK(core::parse_int64(record.fields[id_col], id), where, ": tag_id '", record.fields[id_col],
               "' is not a whole number");
    const int64_t index = tags.size();
    tags.names.push_back(name);
    tags.categories.push_back(category);
    tags.tag_ids.push_back(id);
    if (category == kRatingCategory) {
      tags.rating.push_back(index);
    } else if (category == kGeneralCategory) {
      tags.general.push_back(index);
    } else if (category == kCharacterCategory) {
      tags.character.push_back(index);
    } else {
      tags.other.push_back(index);
    }
  }
  LS_CHECK(tags.size() > 0, file, ": a header but no tags");
  return tags;
}

SelectedTags read_selected_tags(const std::string& path) {
  std::filesystem::path file = path;
  if (std::filesystem::is_directory(file)) file /= "selected_tags.csv";
  LS_CHECK(std::filesystem::is_regular_file(file), file.string(),
           ": no such file (a WD14 tagger folder holds selected_tags.csv next to model.safetensors)");
  return parse_selected_tags(core::read_file(file), file.string());
}

}  // namespace ls::caption
