// A minimal HTTP/1.0 GET against 127.0.0.1 for tests (metrics endpoints,
// Prometheus' API): no keep-alive, read to EOF, 10 s receive timeout.
//
// Thread safety: the functions are thread-safe.
#ifndef RCPTGUARD_TESTS_TESTUTIL_HTTP_H_
#define RCPTGUARD_TESTS_TESTUTIL_HTTP_H_

#include <string>
#include <string_view>

namespace rcptguard::testing {

// GET http://127.0.0.1:port{path}; the whole response (status line,
// headers, body), "" when nothing could be sent or read.
std::string HttpGet(int port, std::string_view path);

// The body of a whole response ("" without the blank line).
std::string HttpBody(const std::string& response);

}  // namespace rcptguard::testing

#endif  // RCPTGUARD_TESTS_TESTUTIL_HTTP_H_
