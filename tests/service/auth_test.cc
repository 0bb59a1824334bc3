// Tests server/service/auth.h without a network: the tokens file format,
// its errors (which never show a token), authentication and the grants.
#include "server/service/auth.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gameopt {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTokens[] =
    "# a comment line\n"
    "\n"
    "admin-token-0123456789 admin\n"
    "worker-token-0123456789\tworker a b   # two sessions\n"
    "reader-token-0123456789 reader *\r\n";

std::string Bearer(const std::string& token) { return "Bearer " + token; }

TEST(Authorizer, ParsesRolesAndSessions) {
  absl::StatusOr<Authorizer> authorizer = Authorizer::Parse(kTokens, "t");
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  EXPECT_EQ(authorizer->num_tokens(), 3u);
  const std::string worker = Bearer("worker-token-0123456789");
  absl::StatusOr<const Grant*> grant = authorizer->Authenticate(worker);
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ((*grant)->role, Role::kWorker);
  EXPECT_TRUE((*grant)->Allows(Access::kWork, "a").ok());
  EXPECT_TRUE((*grant)->Allows(Access::kRead, "b").ok());
  EXPECT_EQ((*grant)->Allows(Access::kWork, "c").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*grant)->Allows(Access::kManage, "a").code(),
            absl::StatusCode::kPermissionDenied);
  const std::string reader = Bearer("reader-token-0123456789");
  grant = authorizer->Authenticate(reader);
  ASSERT_TRUE(grant.ok());
  EXPECT_TRUE((*grant)->Allows(Access::kRead, "anything").ok());
  EXPECT_EQ((*grant)->Allows(Access::kWork, "anything").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(Authorizer, MissingMalformedOrUnknownTokensAreUnauthenticated) {
  absl::StatusOr<Authorizer> authorizer = Authorizer::Parse(kTokens, "t");
  ASSERT_TRUE(authorizer.ok());
  EXPECT_EQ(authorizer->Authenticate(std::nullopt).status().code(),
            absl::StatusCode::kUnauthenticated);
  for (const std::string& header : std::vector<std::string>{
           "admin-token-0123456789", "Bearer admin-token-012345678",
           "Bearer admin-token-01234567890", "bearer admin-token-0123456789",
           "Bearer "}) {
    EXPECT_EQ(authorizer->Authenticate(header).status().code(),
              absl::StatusCode::kUnauthenticated)
        << header;
  }
}

TEST(Authorizer, OpenAllowsEverything) {
  const Authorizer open = Authorizer::Open();
  EXPECT_TRUE(open.open());
  absl::StatusOr<const Grant*> grant = open.Authenticate(std::nullopt);
  ASSERT_TRUE(grant.ok());
  EXPECT_TRUE((*grant)->Allows(Access::kManage, "any").ok());
}

TEST(Authorizer, ErrorsNameTheLineAndNeverTheToken) {
  const struct {
    const char* text;
    const char* expected;
  } kCases[] = {
      {"secret-token-0123456789\n", "line 1: expected TOKEN ROLE"},
      {"# x\nsecret-token-0123456789 root\n", "line 2: role 'root'"},
      {"secret-token-0123456789 admin s1\n", "list none"},
      {"secret-token-0123456789 worker\n", "names its sessions"},
      {"secret-token-0123456789 reader bad/id\n", "must match"},
      {"secret-tok reader *\n", "16 to 512"},
      {"secret-token-0123456789 admin\nsecret-token-0123456789 reader *\n",
       "line 2: a token listed twice"},
      {"# nothing\n\n", "has no token"},
  };
  for (const auto& c : kCases) {
    absl::StatusOr<Authorizer> authorizer = Authorizer::Parse(c.text, "f");
    ASSERT_FALSE(authorizer.ok()) << c.text;
    EXPECT_EQ(authorizer.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(authorizer.status().message(), HasSubstr(c.expected));
    EXPECT_THAT(authorizer.status().message(), Not(HasSubstr("secret-tok")));
  }
  EXPECT_THAT(Authorizer::FromFile("/nonexistent/tokens").status().message(),
              HasSubstr("/nonexistent/tokens"));
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));
}

}  // namespace
}  // namespace gameopt
