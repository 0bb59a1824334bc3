// LivePage: a page that watches training, served on the metrics port next
// to /metrics (gameopt_server --metrics_address; server/README.md).
//
//   GET /  (and /ui)        the page: a table of the sessions and, for the
//                           selected one, its curves (|xi| per player, L,
//                           correction norm, gamma, steps per second
//                           against the step) and its latest spectrum in
//                           the complex plane; it polls the two JSON
//                           endpoints below once a second.
//   GET /api/sessions       json_api.h
//   GET /api/spectrum?session=ID
//
// The plots are drawn by a small hand-written canvas script inside the page
// (no JavaScript library): the page is one self-contained document compiled
// into the binary, so nothing is fetched from anywhere at run time and the
// .deb needs no asset files.
//
// The curves come from a HistoryBook that a sampler thread fills every
// `sample_interval` from the sessions' SessionInfo (the numbers GetMetrics
// reports), at most `history_points` points per session (see
// session_history.h for how it thins).
//
// Thread-safe. The registry must outlive the page.
#ifndef GAMEOPT_SERVER_SERVICE_LIVE_PAGE_H_
#define GAMEOPT_SERVER_SERVICE_LIVE_PAGE_H_

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/registry.h"
#include "server/core/session_history.h"

struct CivetCallbacks;

namespace gameopt {

// The page's HTML, script and style (live_page_html.cc).
extern const char* const kLivePageHtml;

struct HttpResponse {
  int code = 200;
  std::string content_type;
  std::string body;
};

class LivePage {
 public:
  struct Options {
    absl::Duration sample_interval = absl::Milliseconds(100);
    int history_points = 2000;
  };

  // Starts the sampler thread.
  LivePage(const SessionRegistry* registry, Options options);
  // Stops the sampler thread.
  ~LivePage();

  LivePage(const LivePage&) = delete;
  LivePage& operator=(const LivePage&) = delete;

  // The answer to GET `path` with query string `query` ("" for none): 200
  // with the page or the JSON, 400 for /api/spectrum without a session,
  // 404 for an unknown session; code 0 when the path is not the page's
  // (then the caller serves it, e.g. /metrics).
  HttpResponse Handle(absl::string_view path, absl::string_view query) const;

  // Samples every session now (the sampler thread does it every
  // sample_interval; tests call it to avoid waiting).
  void SampleNow();

  // civetweb callbacks whose begin_request answers the page's paths for
  // the LivePage registered for the request's local port, and leaves every
  // other request to civetweb's handlers.
  static const CivetCallbacks* Callbacks();
  // Routes requests that arrive on `port` to `page` (nullptr: stop).
  static void Route(int port, const LivePage* page);

 private:
  void SampleLoop();

  const SessionRegistry* const registry_;
  const Options options_;
  HistoryBook history_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread sampler_;
};

}  // namespace gameopt

#endif  // GAMEOPT_SERVER_SERVICE_LIVE_PAGE_H_
