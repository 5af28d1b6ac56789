#include "apps/reactorc/tree_report.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "apps/common/human_units.h"
#include "apps/common/log.h"
#include "apps/common/terminal_text.h"

namespace client {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr double kEventInterval = 0.25;

struct Json {
  cJSON* object = cJSON_CreateObject();
  ~Json() { cJSON_Delete(object); }
  Json& str(const char* key, const std::string& value) {
    cJSON_AddStringToObject(object, key, value.c_str());
    return *this;
  }
  Json& num(const char* key, double value) {
    cJSON_AddNumberToObject(object, key, value);
    return *this;
  }
  Json& boolean(const char* key, bool value) {
    cJSON_AddBoolToObject(object, key, value ? 1 : 0);
    return *this;
  }
  std::string text() const {
    char* printed = cJSON_PrintUnformatted(object);
    std::string out = printed != nullptr ? printed : "{}";
    cJSON_free(printed);
    return out;
  }
};

std::string plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

TreeReport::TreeReport(ProgressStyle style, int verbosity)
    : style_(style),
      verbosity_(verbosity),
      json_(style == ProgressStyle::kJson),
      tty_(isatty(STDERR_FILENO) == 1),
      started_(now_seconds()) {}

TreeReport::~TreeReport() = default;

double TreeReport::elapsed() const { return std::max(0.0, now_seconds() - started_); }

void TreeReport::start(const std::vector<std::string>& sources, const std::string& destination) {
  if (json_) {
    Json event;
    event.str("event", "start");
    cJSON* list = cJSON_AddArrayToObject(event.object, "sources");
    for (const std::string& source : sources) cJSON_AddItemToArray(list, cJSON_CreateString(source.c_str()));
    event.str("destination", destination);
    emit(event.text());
    return;
  }
  if (verbosity_ < 0) return;
  bar_ = std::make_unique<Progress>(STDERR_FILENO, style_, tty_, app::stream_wants_color(STDERR_FILENO), "0/0 files",
                                    0, 0);
  bar_->set_ascii(!app::locale_is_utf8());
  bar_->set_dumb_terminal(tty_ && app::terminal_is_dumb());
}

void TreeReport::listed(uint64_t files, uint64_t bytes) {
  files_total_ += files;
  bytes_total_ += bytes;
  update_bar();
}

void TreeReport::received(uint64_t bytes) {
  bytes_received_ = bytes;
  if (bar_) bar_->update(bytes_done_ + bytes_received_);
}

void TreeReport::update_bar() {
  if (!bar_) return;
  // The count padded to the total's digits, so that the line does not shift as it grows.
  std::string total = std::to_string(files_total_);
  std::string count = std::to_string(done_ + unchanged_ + skipped_ + failed_);
  if (count.size() < total.size()) count.insert(0, total.size() - count.size(), ' ');
  bar_->set_label(count + "/" + total + " files", count + "/" + total);
  bar_->set_total(bytes_total_);
  bar_->update(bytes_done_ + bytes_received_);
}

void TreeReport::say(const std::string& line) {
  if (bar_) bar_->clear();
  std::string text = line + "\n";
  ssize_t ignored = write(STDERR_FILENO, text.data(), text.size());  // best effort, as the bar's
  (void)ignored;
}

void TreeReport::emit(const std::string& json) {
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void TreeReport::file_done(const std::string& remote, const std::string& local, uint64_t size) {
  ++done_;
  if (json_) {
    emit(Json().str("event", "file_done").str("path", remote).str("local", local).num("size", double(size)).text());
    return;
  }
  update_bar();
  if (verbosity_ > 0) say(std::string(app::locale_is_utf8() ? "\u2713 " : "OK ") + app::escape_for_terminal(local) +
                          "  " + app::format_bytes(size));
}

void TreeReport::file_unchanged(const std::string& remote, const std::string& local, uint64_t size,
                                const std::string& why) {
  ++unchanged_;
  bytes_done_ += size;
  if (json_) {
    emit(Json().str("event", "file_skipped").str("path", remote).str("local", local).str("reason", why).text());
    return;
  }
  update_bar();
  if (verbosity_ > 0) say("- " + app::escape_for_terminal(local) + "  " + why);
}

void TreeReport::file_skipped(const std::string& remote, const std::string& local, const std::string& why) {
  ++skipped_;
  if (json_) {
    emit(Json().str("event", "file_skipped").str("path", remote).str("local", local).str("reason", why).text());
    return;
  }
  update_bar();
  if (verbosity_ >= 0) say("- " + app::escape_for_terminal(local) + "  skipped: " + why);
}

void TreeReport::file_failed(const std::string& remote, const std::string& local, const std::string& why) {
  ++failed_;
  if (json_) {
    emit(Json().str("event", "file_failed").str("path", remote).str("local", local).str("reason", why).text());
    return;
  }
  update_bar();
  say(std::string(app::locale_is_utf8() ? "\u2717 " : "FAILED ") + app::escape_for_terminal(local) + ": " +
      app::escape_for_terminal(why));
}

void TreeReport::file_resumed(const std::string& remote, const std::string& local, uint64_t held, uint64_t kept,
                              uint64_t size) {
  // What is kept counts as done: the bar's bytes are the files' bytes in place.
  bytes_done_ += kept;
  if (json_) {
    emit(Json()
             .str("event", "file_resumed")
             .str("path", remote)
             .str("local", local)
             .num("held", double(held))
             .num("kept", double(kept))
             .num("size", double(size))
             .text());
    return;
  }
  update_bar();
  if (verbosity_ > 0)
    say("~ " + app::escape_for_terminal(local) + "  resuming: " + app::format_bytes(kept) + " of the " +
        app::format_bytes(held) + " held verified and kept, " + app::format_bytes(size - kept) + " to fetch");
}

void TreeReport::link_done(const std::string& remote, const std::string& local, const std::string& target,
                           bool unchanged) {
  ++links_;
  if (json_) {
    emit(Json()
             .str("event", "link_done")
             .str("path", remote)
             .str("local", local)
             .str("target", target)
             .boolean("unchanged", unchanged)
             .text());
    return;
  }
  update_bar();
  if (verbosity_ > 0) {
    std::string mark = unchanged ? "- " : app::locale_is_utf8() ? "\u2713 " : "OK ";
    say(mark + app::escape_for_terminal(local) + " -> " + app::escape_for_terminal(target) +
        (unchanged ? "  unchanged (the same link)" : ""));
  }
}

void TreeReport::failed(const std::string& what, const std::string& why) {
  ++failed_;
  if (json_) {
    emit(Json().str("event", "file_failed").str("path", what).str("reason", why).text());
    return;
  }
  say(std::string(app::locale_is_utf8() ? "\u2717 " : "FAILED ") + app::escape_for_terminal(what) + ": " +
      app::escape_for_terminal(why));
}

void TreeReport::tick() {
  if (json_) {
    double t = elapsed();
    if (last_event_ >= 0 && t - last_event_ < kEventInterval) return;
    last_event_ = t;
    emit(Json()
             .str("event", "progress")
             .num("files_done", double(done_ + unchanged_ + skipped_ + failed_))
             .num("files_total", double(files_total_))
             .num("bytes_done", double(bytes_done_ + bytes_received_))
             .num("bytes_total", double(bytes_total_))
             .num("elapsed", t)
             .text());
    return;
  }
  if (bar_) bar_->tick();
}

void TreeReport::finish(int status, const std::string& fatal) {
  if (json_) {
    Json event;
    event.str("event", "summary")
        .num("files", double(done_))
        .num("bytes", double(bytes_received_))
        .num("unchanged", double(unchanged_))
        .num("skipped", double(skipped_))
        .num("failed", double(failed_))
        .num("links", double(links_))
        .num("elapsed", elapsed())
        .num("status", status);
    if (!fatal.empty()) event.str("error", fatal);
    emit(event.text());
    return;
  }
  if (!fatal.empty()) say(std::string("reactorc: ") + app::escape_for_terminal(fatal));
  if (!bar_) return;
  // Stopped before anything was known: the reason above says it all.
  if (!fatal.empty() && files_total_ == 0 && failed_ == 0 && skipped_ == 0) {
    bar_->clear();
    bar_.reset();
    return;
  }
  std::string detail;
  if (links_ > 0) detail += plural(links_, "link", "links");
  if (unchanged_ > 0) detail += (detail.empty() ? "" : ", ") + plural(unchanged_, "unchanged", "unchanged");
  if (skipped_ > 0) detail += (detail.empty() ? "" : ", ") + plural(skipped_, "skipped", "skipped");
  if (failed_ > 0) detail += (detail.empty() ? "" : ", ") + plural(failed_, "failed", "failed");
  bar_->set_label(plural(done_, "file", "files"));
  bar_->update(bytes_received_);
  bar_->set_total(bytes_received_);
  if (status == 0) {
    bar_->finish_ok(detail);
  } else {
    bar_->finish_failed(detail.empty() ? "stopped" : detail);
  }
}

}  // namespace client
