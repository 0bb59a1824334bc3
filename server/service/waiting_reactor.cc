#include "server/service/waiting_reactor.h"

#include <utility>

namespace gameopt::internal {

WaitingReactor::WaitingReactor(std::shared_ptr<Session> session,
                               ReactorCount* count)
    : session_(std::move(session)), count_(count) {
  count_->Add();
}

WaitingReactor::~WaitingReactor() { count_->Remove(); }

void WaitingReactor::Started(CallId id) {
  bool cancel;
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
    call_ = id;
    cancel = cancelled_;
  }
  if (cancel && id != 0) CancelCall(id);
  Unref();
}

void WaitingReactor::OnCancel() {
  CallId id;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!started_) return;  // Started() cancels once the id is known
    id = call_;
  }
  if (id != 0) CancelCall(id);
}

void WaitingReactor::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace gameopt::internal
