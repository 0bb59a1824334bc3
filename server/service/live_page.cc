#include "server/service/live_page.h"

#include <cstring>
#include <string>
#include <utility>

#include "CivetServer.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "civetweb.h"
#include "server/service/json_api.h"

namespace gameopt {
namespace {

// Which page answers on which local port (more than one server per process
// in tests).
struct Routes {
  absl::Mutex mu;
  absl::flat_hash_map<int, const LivePage*> pages ABSL_GUARDED_BY(mu);
};

Routes& GetRoutes() {
  static Routes* const routes = new Routes();  // never destroyed
  return *routes;
}

// The value of `name` in the query string, or "" if absent.
std::string QueryValue(absl::string_view query, const char* name) {
  if (query.empty()) return "";
  char value[256];
  const int length =
      mg_get_var(query.data(), query.size(), name, value, sizeof(value));
  return length > 0 ? std::string(value, length) : "";
}

// civetweb's begin_request: answers the page's paths, returns 0 (civetweb
// goes on, e.g. to /metrics) for the others.
int BeginRequest(mg_connection* connection) {
  const mg_request_info* request = mg_get_request_info(connection);
  if (request == nullptr || request->local_uri == nullptr) return 0;
  HttpResponse response;
  {
    Routes& routes = GetRoutes();
    // Held while answering: Route(port, nullptr) waits for the answers in
    // flight, so the page outlives them.
    absl::MutexLock lock(&routes.mu);
    auto it = routes.pages.find(request->server_port);
    if (it == routes.pages.end()) return 0;
    if (std::strcmp(request->request_method, "GET") != 0 &&
        std::strcmp(request->request_method, "HEAD") != 0) {
      return 0;
    }
    response = it->second->Handle(
        request->local_uri,
        request->query_string == nullptr ? "" : request->query_string);
  }
  if (response.code == 0) return 0;
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            response.code, mg_get_response_code_text(connection, response.code),
            response.content_type.c_str(), response.body.size());
  if (std::strcmp(request->request_method, "HEAD") != 0) {
    mg_write(connection, response.body.data(), response.body.size());
  }
  return response.code;
}

HttpResponse Json(int code, std::string body) {
  return {code, "application/json; charset=utf-8", std::move(body)};
}

HttpResponse JsonError(int code, absl::string_view message) {
  return Json(code, absl::StrCat("{\"error\":", JsonString(message), "}"));
}

}  // namespace

LivePage::LivePage(const SessionRegistry* registry, Options options)
    : registry_(registry), options_(options), history_(options.history_points) {
  sampler_ = std::thread([this] { SampleLoop(); });
}

LivePage::~LivePage() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  sampler_.join();
}

void LivePage::SampleNow() { history_.Sample(registry_->List(), absl::Now()); }

void LivePage::SampleLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    SampleNow();
    mu_.Lock();
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.sample_interval);
  }
}

HttpResponse LivePage::Handle(absl::string_view path,
                              absl::string_view query) const {
  if (path == "/" || path == "/ui" || path == "/ui/") {
    return {200, "text/html; charset=utf-8", kLivePageHtml};
  }
  if (path == "/api/sessions") {
    return Json(200, SessionsJson(*registry_, history_));
  }
  if (path == "/api/spectrum") {
    const std::string id = QueryValue(query, "session");
    if (id.empty()) {
      return JsonError(400, "/api/spectrum needs ?session=ID");
    }
    absl::StatusOr<std::string> body = SpectrumJson(*registry_, id);
    if (!body.ok()) return JsonError(404, body.status().message());
    return Json(200, *std::move(body));
  }
  return {0, "", ""};
}

const CivetCallbacks* LivePage::Callbacks() {
  static const CivetCallbacks* const callbacks = [] {
    auto* c = new CivetCallbacks();
    c->begin_request = BeginRequest;
    return c;
  }();
  return callbacks;
}

void LivePage::Route(int port, const LivePage* page) {
  Routes& routes = GetRoutes();
  absl::MutexLock lock(&routes.mu);
  if (page == nullptr) {
    routes.pages.erase(port);
  } else {
    routes.pages[port] = page;
  }
}

}  // namespace gameopt
