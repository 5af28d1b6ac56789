// SocketAddress, parse_address() and resolve(): the strict numeric parser the server binds
// with, and the resolver the client connects with. Loopback names only: no test needs DNS.

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "reactor/socket_address.h"
#include "reactor/socket_ops.h"

// Criterion's Test() macro expands to a C-style cast.
#pragma GCC diagnostic ignored "-Wold-style-cast"

using reactor::SocketAddress;

namespace {

SocketAddress parse_ok(std::string_view text) {
  SocketAddress addr;
  std::string err;
  bool ok = reactor::parse_address(text, &addr, &err);
  cr_assert(ok, "parse_address(\"%.*s\") failed: %s", static_cast<int>(text.size()), text.data(),
            err.c_str());
  cr_assert(err.empty());
  return addr;
}

std::string parse_bad(std::string_view text) {
  SocketAddress addr = SocketAddress::ipv4_loopback(7);
  std::string err;
  bool ok = reactor::parse_address(text, &addr, &err);
  cr_assert(!ok, "parse_address(\"%.*s\") should fail", static_cast<int>(text.size()),
            text.data());
  cr_assert(!err.empty(), "a failure must say why");
  cr_assert(addr == SocketAddress::ipv4_loopback(7), "a failed parse leaves *out alone");
  return err;
}

}  // namespace

Test(socket_address, default_is_unspecified, .timeout = 10) {
  SocketAddress addr;
  cr_assert_eq(addr.family(), AF_UNSPEC);
  cr_assert_eq(addr.length(), 0u);
  cr_assert_eq(addr.port(), 0);
  cr_assert_eq(addr.to_string(), "(unspecified)");
}

Test(socket_address, parses_ipv4, .timeout = 10) {
  SocketAddress addr = parse_ok("127.0.0.1:9000");
  cr_assert_eq(addr.family(), AF_INET);
  cr_assert_eq(addr.port(), 9000);
  cr_assert_eq(addr.length(), sizeof(sockaddr_in));
  cr_assert_eq(addr.to_string(), "127.0.0.1:9000");
  cr_assert(addr == SocketAddress::ipv4_loopback(9000));
}

Test(socket_address, parses_ipv6, .timeout = 10) {
  SocketAddress addr = parse_ok("[::1]:9000");
  cr_assert_eq(addr.family(), AF_INET6);
  cr_assert_eq(addr.port(), 9000);
  cr_assert_eq(addr.length(), sizeof(sockaddr_in6));
  cr_assert_eq(addr.to_string(), "[::1]:9000");
  cr_assert(addr == SocketAddress::ipv6_loopback(9000));

  cr_assert_eq(parse_ok("[2001:db8::42]:443").to_string(), "[2001:db8::42]:443");
  cr_assert_eq(parse_ok("[::ffff:192.0.2.1]:80").to_string(), "[::ffff:192.0.2.1]:80");
}

Test(socket_address, parses_ipv6_with_numeric_scope, .timeout = 10) {
  SocketAddress addr = parse_ok("[fe80::1%1]:22");
  cr_assert_eq(addr.family(), AF_INET6);
  cr_assert_eq(addr.port(), 22);
  std::string text = addr.to_string();
  cr_assert(text.rfind("[fe80::1%", 0) == 0 && text.size() > 13 &&
                text.compare(text.size() - 4, 4, "]:22") == 0,
            "got %s", text.c_str());
}

Test(socket_address, port_bounds, .timeout = 10) {
  cr_assert_eq(parse_ok("0.0.0.0:0").port(), 0, "0 is the ephemeral port");
  cr_assert_eq(parse_ok("[::]:65535").port(), 65535);
  cr_assert_eq(parse_ok("10.1.2.3:080").port(), 80);
  std::string err = parse_bad("1.2.3.4:65536");
  cr_assert_eq(err, "address \"1.2.3.4:65536\": port \"65536\" is not a number from 0 to 65535");
  parse_bad("1.2.3.4:123456");
  parse_bad("1.2.3.4:99999");
  parse_bad("[::1]:70000");
}

Test(socket_address, rejects_junk, .timeout = 10) {
  const char* bad[] = {
      "",              "127.0.0.1",     "127.0.0.1:",    ":9000",          "localhost:80",
      "127.1:80",      "0x7f.0.0.1:80", "256.1.1.1:80",  "1.2.3.4.5:80",   "1.2.3.4:-1",
      "1.2.3.4:+80",   "1.2.3.4:80x",   "1.2.3.4: 80",   " 1.2.3.4:80",    "1.2.3.4:8 0",
      "[::1]",         "[::1]:",        "[::1]9000",     "[::1",           "::1]:80",
      "[]:80",         "[127.0.0.1]:80", "[::1]:80:80",  "[fe80::1%]:80",  "[::g]:80",
      "[fe80::1%nosuchinterface0]:80",  "1.2.3.4:0x50", "\xff\xfe:80",
  };
  for (const char* text : bad) parse_bad(text);
}

Test(socket_address, rejects_unbracketed_ipv6_with_a_hint, .timeout = 10) {
  std::string err = parse_bad("::1:9000");
  cr_assert(err.find("brackets") != std::string::npos, "got: %s", err.c_str());
}

Test(socket_address, rejects_embedded_nul, .timeout = 10) {
  using namespace std::string_view_literals;
  parse_bad("1.2.3.4\0:80"sv);
  parse_bad("1.2.3.4:80\0"sv);
}

Test(socket_address, error_names_the_input, .timeout = 10) {
  std::string err = parse_bad("example.com:80");
  cr_assert_eq(err, "address \"example.com:80\": \"example.com\" is not a numeric IPv4 address");
}

Test(socket_address, set_port_and_equality, .timeout = 10) {
  SocketAddress a = parse_ok("192.0.2.7:1");
  SocketAddress b = a;
  cr_assert(a == b);
  b.set_port(2);
  cr_assert(a != b);
  cr_assert_eq(b.to_string(), "192.0.2.7:2");
  cr_assert(SocketAddress::ipv4_loopback(5) != SocketAddress::ipv6_loopback(5));
}

Test(socket_address, same_host_ignores_the_port, .timeout = 10) {
  cr_assert(parse_ok("192.0.2.7:1").same_host(parse_ok("192.0.2.7:2")));
  cr_assert_not(parse_ok("192.0.2.7:1").same_host(parse_ok("192.0.2.8:1")));
  cr_assert(parse_ok("[::1]:1").same_host(parse_ok("[::1]:9")));
  cr_assert_not(parse_ok("[::1]:1").same_host(parse_ok("[::2]:1")));
  cr_assert_not(parse_ok("[fe80::1%1]:1").same_host(parse_ok("[fe80::1%2]:1")), "the scope counts");
  cr_assert_not(SocketAddress::ipv4_loopback(5).same_host(SocketAddress::ipv6_loopback(5)));
  cr_assert_not(SocketAddress().same_host(SocketAddress::ipv4_loopback(0)));
}

Test(socket_address, resolve_numeric, .timeout = 10) {
  std::vector<SocketAddress> out;
  std::string err;
  cr_assert(reactor::resolve("127.0.0.1:9000", &out, &err), "%s", err.c_str());
  cr_assert_eq(out.size(), 1u);
  cr_assert_eq(out[0].to_string(), "127.0.0.1:9000");

  cr_assert(reactor::resolve("[::1]:9001", &out, &err), "%s", err.c_str());
  cr_assert_eq(out.size(), 1u, "results replace what was there");
  cr_assert_eq(out[0].to_string(), "[::1]:9001");
}

Test(socket_address, resolve_localhost_is_loopback, .timeout = 10) {
  std::vector<SocketAddress> out;
  std::string err;
  cr_assert(reactor::resolve("localhost:8080", &out, &err), "%s", err.c_str());
  cr_assert(!out.empty());
  for (const SocketAddress& addr : out) {
    cr_assert(addr == SocketAddress::ipv4_loopback(8080) ||
                  addr == SocketAddress::ipv6_loopback(8080),
              "localhost resolved to %s", addr.to_string().c_str());
  }
}

Test(socket_address, resolve_rejects_bad_text_before_any_lookup, .timeout = 10) {
  std::vector<SocketAddress> out{SocketAddress::ipv4_loopback(1)};
  std::string err;
  cr_assert(!reactor::resolve("localhost:99999", &out, &err));
  cr_assert_eq(err, "address \"localhost:99999\": port \"99999\" is not a number from 0 to 65535");
  cr_assert(!reactor::resolve("localhost", &out, &err));
  cr_assert(err.find("HOST:PORT") != std::string::npos, "got: %s", err.c_str());
  cr_assert(!reactor::resolve("::1:80", &out, &err));
  cr_assert_eq(out.size(), 1u, "a failure leaves *out alone");
}

Test(socket_address, resolve_error_names_the_input, .timeout = 10) {
  std::vector<SocketAddress> out;
  std::string err;
  // A numeric host getaddrinfo rejects: fails without touching the network.
  cr_assert(!reactor::resolve("[::zz]:80", &out, &err));
  cr_assert(err.rfind("resolve \"[::zz]:80\": ", 0) == 0, "got: %s", err.c_str());
}

// socket_ops: the small wrappers the listener and connector are built from.

Test(socket_ops, flags_toggle, .timeout = 10) {
  std::string err;
  reactor::UniqueFd fd = reactor::tcp_socket(AF_INET, &err);
  cr_assert(fd, "%s", err.c_str());
  cr_assert(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, "tcp_socket is non-blocking");
  cr_assert(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, "and close-on-exec");
  cr_assert(reactor::set_nonblocking(fd.get(), false, &err));
  cr_assert_eq(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK, 0);
  cr_assert(reactor::set_cloexec(fd.get(), false, &err));
  cr_assert_eq(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC, 0);
  cr_assert(reactor::set_nodelay(fd.get(), true, &err), "%s", err.c_str());
  cr_assert(reactor::set_reuseaddr(fd.get(), true, &err), "%s", err.c_str());
  cr_assert(reactor::set_send_buffer(fd.get(), 65536, &err), "%s", err.c_str());
  cr_assert(reactor::set_receive_buffer(fd.get(), 65536, &err), "%s", err.c_str());
  cr_assert_eq(reactor::socket_error(fd.get()), 0);
}

Test(socket_ops, errors_name_the_call_and_fd, .timeout = 10) {
  std::string err;
  cr_assert(!reactor::set_nonblocking(-1, true, &err));
  cr_assert_eq(err, "fcntl O_NONBLOCK fd -1: Bad file descriptor");
  cr_assert(!reactor::set_nodelay(-1, true, &err));
  cr_assert_eq(err, "setsockopt TCP_NODELAY fd -1: Bad file descriptor");
  cr_assert(!reactor::tcp_socket(AF_UNSPEC, &err));
  cr_assert(err.rfind("socket: ", 0) == 0, "%s", err.c_str());
  cr_assert(!reactor::set_nodelay(-1, true, nullptr), "err may be null");
}

Test(socket_ops, local_and_peer_address, .timeout = 10) {
  std::string err;
  reactor::UniqueFd server = reactor::tcp_socket(AF_INET, &err);
  SocketAddress any = SocketAddress::ipv4_loopback(0);
  cr_assert_eq(::bind(server.get(), any.get(), any.length()), 0);
  cr_assert_eq(::listen(server.get(), 4), 0);
  std::optional<SocketAddress> local = reactor::local_address(server.get(), &err);
  cr_assert(local.has_value(), "%s", err.c_str());
  cr_assert_neq(local->port(), 0);
  cr_assert(!reactor::peer_address(server.get(), &err).has_value(), "a listener has no peer");
  cr_assert(err.find("Transport endpoint is not connected") != std::string::npos, "%s",
            err.c_str());

  reactor::UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  cr_assert_eq(::connect(client.get(), local->get(), local->length()), 0);
  std::optional<SocketAddress> peer = reactor::peer_address(client.get());
  cr_assert(peer.has_value() && *peer == *local);
  cr_assert(reactor::shutdown_write(client.get(), &err), "%s", err.c_str());
}
