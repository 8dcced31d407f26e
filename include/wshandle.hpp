/*
 * wshandle.hpp: a header-only C++17 wrapper over the C API of wshandle.h.
 *
 * - wshandle::websocket and wshandle::listener own one handle each: move-only, released with
 *   ws_close_handle by the destructor (which, like ws_close_handle, does no close handshake:
 *   call close() or shutdown() first when the peer should hear one).
 * - A failing call throws wshandle::error (a std::runtime_error) carrying the result code,
 *   its name (ws_error_name) and this thread's detail (ws_last_error_message).
 * - Every call that can fail also has a non-throwing overload taking a `wshandle::status&`
 *   last; it is noexcept and allocates nothing. Built without exceptions (-fno-exceptions,
 *   or WSHANDLE_NO_EXCEPTIONS defined), only those overloads exist.
 * - Buffers are views: wshandle::bytes (const) and wshandle::mutable_bytes take a pointer and
 *   a size, or any contiguous container of 1-byte elements with data() and size()
 *   (std::string, std::string_view, std::vector<uint8_t>, std::array, std::span, arrays).
 *
 * Rules of the C API hold unchanged (include/wshandle.h): per connection, one receiving and
 * one sending call at a time, from any threads; close() from another thread cancels a
 * blocked receive(). The asynchronous mode of API.md has no wrapper yet (it does not exist
 * in the library yet).
 *
 *   wshandle::websocket ws = wshandle::websocket::open("ws://127.0.0.1:9001/echo");
 *   ws.set_receive_timeout(std::chrono::seconds(5));
 *   ws.connect();
 *   ws.send_text("hello");
 *   std::string reply;
 *   ws.receive_message(reply);
 *   ws.close(WS_CLOSE_STATUS_SUCCESS, "bye");
 */
#ifndef WSHANDLE_HPP
#define WSHANDLE_HPP

#include "wshandle.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#if !defined(WSHANDLE_NO_EXCEPTIONS) && !defined(__cpp_exceptions) && !defined(__EXCEPTIONS)
#define WSHANDLE_NO_EXCEPTIONS 1
#endif
#ifndef WSHANDLE_NO_EXCEPTIONS
#include <stdexcept>
#endif

namespace wshandle {

/** The name of a result code ("WS_ERROR_TIMEOUT"); never NULL. */
inline const char *error_name(ws_error code) noexcept { return ws_error_name(code); }

/** The library's version at run time ("0.1.0"); WSHANDLE_VERSION is the header's. */
inline const char *version() noexcept { return ws_version(); }

/**
 * The outcome of a non-throwing call: WS_OK, or a code with its name and the detail text
 * read on the failing thread right after the call (at most 255 bytes, truncated).
 */
class status {
public:
    status() noexcept = default;

    bool ok() const noexcept { return code_ == WS_OK; }
    explicit operator bool() const noexcept { return ok(); }
    ws_error code() const noexcept { return code_; }
    const char *name() const noexcept { return ws_error_name(code_); }
    const char *detail() const noexcept { return detail_; }

    /** Records `code`; on failure also this thread's ws_last_error_message. Returns ok(). */
    bool set(ws_error code) noexcept {
        code_ = code;
        detail_[0] = '\0';
        if (code != WS_OK)
            ws_last_error_message(detail_, sizeof detail_);
        return code == WS_OK;
    }
    /** For starting an asynchronous operation: WS_ERROR_IO_PENDING (started; one completion
     *  follows) is success and is recorded as WS_OK; anything else is the refusal. */
    bool set_pending(ws_error code) noexcept { return set(code == WS_ERROR_IO_PENDING ? WS_OK : code); }

private:
    ws_error code_ = WS_OK;
    char detail_[256] = {};
};

#ifndef WSHANDLE_NO_EXCEPTIONS
/** What a failing call throws: what() is "NAME: detail". */
class error : public std::runtime_error {
public:
    explicit error(const status &st)
        : std::runtime_error(std::string(st.name()) + (st.detail()[0] ? ": " : "") + st.detail()),
          code_(st.code()), detail_(st.detail()) {}

    ws_error code() const noexcept { return code_; }
    const char *name() const noexcept { return ws_error_name(code_); }
    const char *detail() const noexcept { return detail_.c_str(); }

private:
    ws_error code_;
    std::string detail_;
};
#endif

namespace detail {
template <class T>
struct is_one_byte : std::bool_constant<sizeof(T) == 1> {};
template <class T>
struct is_one_byte<const T> : is_one_byte<T> {};
template <>
struct is_one_byte<void> : std::false_type {};
template <>
struct is_one_byte<const void> : std::false_type {};

/** C has data() and size(), and data() points to 1-byte elements. */
template <class C, class = void>
struct is_byte_container : std::false_type {};
template <class C>
struct is_byte_container<C, std::void_t<decltype(std::declval<C &>().data()),
                                        decltype(std::declval<C &>().size())>>
    : is_one_byte<std::remove_pointer_t<decltype(std::declval<C &>().data())>> {};

#ifndef WSHANDLE_NO_EXCEPTIONS
inline void check(ws_error code) {
    if (code != WS_OK) {
        status st;
        st.set(code);
        throw error(st);
    }
}
/** Starting an asynchronous operation: throws unless it started (WS_ERROR_IO_PENDING). */
inline void check_pending(ws_error code) { check(code == WS_ERROR_IO_PENDING ? WS_OK : code); }
#endif
} // namespace detail

/** A read-only view of bytes to send. */
class bytes {
public:
    constexpr bytes() noexcept = default;
    constexpr bytes(const void *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class C, class = std::enable_if_t<detail::is_byte_container<const C>::value>>
    bytes(const C &c) noexcept : data_(c.data()), size_(c.size()) {}
    /** A byte array (not a char array: a string literal would count its NUL; pass those
     *  as std::string_view). */
    template <class T, std::size_t N,
              class = std::enable_if_t<sizeof(T) == 1 && !std::is_same_v<std::remove_cv_t<T>, char>>>
    constexpr bytes(const T (&a)[N]) noexcept : data_(a), size_(N) {}

    constexpr const void *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }

private:
    const void *data_ = nullptr;
    std::size_t size_ = 0;
};

/** A writable view of bytes to receive into. */
class mutable_bytes {
public:
    constexpr mutable_bytes(void *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <class C, class = std::enable_if_t<detail::is_byte_container<C>::value &&
                                                !std::is_const_v<std::remove_pointer_t<
                                                    decltype(std::declval<C &>().data())>>>>
    mutable_bytes(C &c) noexcept : data_(c.data()), size_(c.size()) {}
    template <class T, std::size_t N, class = std::enable_if_t<sizeof(T) == 1>>
    constexpr mutable_bytes(T (&a)[N]) noexcept : data_(a), size_(N) {}

    constexpr void *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }

private:
    void *data_;
    std::size_t size_;
};

/** What one ws_receive delivered: `size` bytes of a piece of type `type` (WS_BUFFER_*). */
struct received {
    std::size_t size = 0;
    std::uint32_t type = WS_BUFFER_BINARY_MESSAGE;

    /** The last piece of a text or binary message. */
    bool message_end() const noexcept {
        return type == WS_BUFFER_UTF8_MESSAGE || type == WS_BUFFER_BINARY_MESSAGE;
    }
    bool is_text() const noexcept {
        return type == WS_BUFFER_UTF8_MESSAGE || type == WS_BUFFER_UTF8_FRAGMENT;
    }
    /** The peer's close frame: query close_status() for its code and reason. */
    bool is_close() const noexcept { return type == WS_BUFFER_CLOSE; }
};

/** The peer's close frame: its status code and reason (UTF-8, at most 123 bytes). */
struct close_status {
    std::uint16_t code = 0;
    std::string reason;
};

namespace detail {
/** fn(args..., &h), its result recorded in st, and h (0 on failure) owned by a new T. */
template <class T, class Fn, class... Args>
T make(status &st, Fn fn, Args... args) noexcept {
    ws_handle h = 0;
    st.set(fn(args..., &h));
    return T(h);
}
#ifndef WSHANDLE_NO_EXCEPTIONS
/** fn(args..., &h), h owned by a new T; throws wshandle::error on failure. */
template <class T, class Fn, class... Args>
T make(Fn fn, Args... args) {
    ws_handle h = 0;
    check(fn(args..., &h));
    return T(h);
}
#endif
} // namespace detail

/** A NUL-terminated string argument, from a C string or a std::string, without a copy. */
class cstring {
public:
    cstring(const char *s) noexcept : s_(s) {}
    cstring(const std::string &s) noexcept : s_(s.c_str()) {}
    const char *c_str() const noexcept { return s_; }

private:
    const char *s_;
};

/** Owns one handle; the base of websocket and listener. Move-only. */
class handle {
public:
    handle() noexcept = default;
    explicit handle(ws_handle h) noexcept : h_(h) {}
    handle(const handle &) = delete;
    handle &operator=(const handle &) = delete;
    handle(handle &&o) noexcept : h_(std::exchange(o.h_, 0)) {}
    handle &operator=(handle &&o) noexcept {
        if (this != &o)
            reset(std::exchange(o.h_, 0));
        return *this;
    }
    ~handle() { reset(); }

    /** The C handle, still owned by this object. */
    ws_handle native_handle() const noexcept { return h_; }
    /** Gives up ownership: the caller must ws_close_handle the result. */
    ws_handle release() noexcept { return std::exchange(h_, 0); }
    /** Releases the handle now (ws_close_handle: wakes calls blocked on other threads). */
    void reset(ws_handle h = 0) noexcept {
        if (h_ != 0)
            ws_close_handle(h_);
        h_ = h;
    }
    explicit operator bool() const noexcept { return h_ != 0; }
    /**
     * ws_close_handle now, safe while another thread is blocked in a call on this object
     * (that call returns WS_ERROR_OPERATION_CANCELLED): the object keeps the now invalid
     * value, so later calls fail with WS_ERROR_INVALID_HANDLE and the destructor's second
     * ws_close_handle is harmless. Use reset() when no other thread uses the object.
     */
    void close_handle() const noexcept {
        if (h_ != 0)
            ws_close_handle(h_);
    }

    // ---- options (the timeouts may change at any time; the rest before connect) ----
    // The option's type is in the name: set_option_u32(WS_OPTION_RECEIVE_TIMEOUT, 5000) is
    // unambiguous where one overloaded set_option would not be for an int literal.

    bool set_option_u32(std::uint32_t option, std::uint32_t value, status &st) noexcept {
        return st.set(ws_set_option(h_, option, &value, sizeof value));
    }
    bool set_option_u64(std::uint32_t option, std::uint64_t value, status &st) noexcept {
        return st.set(ws_set_option(h_, option, &value, sizeof value));
    }
    bool set_option_string(std::uint32_t option, std::string_view value, status &st) noexcept {
        return st.set(ws_set_option(h_, option, value.data(), value.size()));
    }
    /** A timeout option (WS_OPTION_*_TIMEOUT, WS_OPTION_KEEPALIVE_INTERVAL) in any unit;
     *  zero means none, as in the C API. */
    template <class Rep, class Period>
    bool set_timeout(std::uint32_t option, std::chrono::duration<Rep, Period> d, status &st) noexcept {
        return set_option_u32(option, to_ms(d), st);
    }
    template <class Rep, class Period>
    bool set_receive_timeout(std::chrono::duration<Rep, Period> d, status &st) noexcept {
        return set_timeout(WS_OPTION_RECEIVE_TIMEOUT, d, st);
    }
    /** WS_OPTION_LOCAL_PORT. */
    std::uint16_t local_port(status &st) const noexcept {
        return static_cast<std::uint16_t>(query_u32(WS_OPTION_LOCAL_PORT, st));
    }
    /** A u32 option (a timeout, WS_OPTION_HTTP_STATUS, WS_OPTION_LOCAL_PORT); 0 on failure. */
    std::uint32_t query_u32(std::uint32_t option, status &st) const noexcept {
        std::uint32_t v = 0;
        std::size_t len = sizeof v;
        return st.set(ws_query_option(h_, option, &v, &len)) ? v : 0;
    }
    // ---- asynchronous mode (before ws_connect, or before a listener's first accept) ----

    /** Binds this handle to a completion queue (WS_OPTION_COMPLETION_QUEUE): its operations
     *  then return at once and complete through queue::wait(). */
    bool bind(ws_handle queue, status &st) noexcept {
        return st.set(ws_set_option(h_, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    }
    /** WinHTTP's callback mode: `cb` runs on the library's I/O threads (ws_set_status_callback). */
    bool set_status_callback(ws_status_callback cb, status &st) noexcept {
        return st.set(ws_set_status_callback(h_, cb));
    }
    /** WS_OPTION_CONTEXT_VALUE: the `context` of every completion of this handle. */
    bool set_context(void *context, status &st) noexcept {
        return st.set(ws_set_option(h_, WS_OPTION_CONTEXT_VALUE, &context, sizeof context));
    }

    /** WS_STATE_*; WS_STATE_NONE on failure. */
    std::uint32_t state(status &st) const noexcept {
        std::uint32_t s = WS_STATE_NONE;
        st.set(ws_query_state(h_, &s));
        return s;
    }

#ifndef WSHANDLE_NO_EXCEPTIONS
    void set_option_u32(std::uint32_t option, std::uint32_t value) {
        detail::check(ws_set_option(h_, option, &value, sizeof value));
    }
    void set_option_u64(std::uint32_t option, std::uint64_t value) {
        detail::check(ws_set_option(h_, option, &value, sizeof value));
    }
    void set_option_string(std::uint32_t option, std::string_view value) {
        detail::check(ws_set_option(h_, option, value.data(), value.size()));
    }
    template <class Rep, class Period>
    void set_timeout(std::uint32_t option, std::chrono::duration<Rep, Period> d) {
        set_option_u32(option, to_ms(d));
    }
    template <class Rep, class Period>
    void set_receive_timeout(std::chrono::duration<Rep, Period> d) {
        set_timeout(WS_OPTION_RECEIVE_TIMEOUT, d);
    }
    std::uint16_t local_port() const {
        return static_cast<std::uint16_t>(query_u32(WS_OPTION_LOCAL_PORT));
    }
    std::uint32_t query_u32(std::uint32_t option) const {
        std::uint32_t v = 0;
        std::size_t len = sizeof v;
        detail::check(ws_query_option(h_, option, &v, &len));
        return v;
    }
    std::uint32_t state() const {
        std::uint32_t s = WS_STATE_NONE;
        detail::check(ws_query_state(h_, &s));
        return s;
    }
    void bind(ws_handle queue) {
        detail::check(ws_set_option(h_, WS_OPTION_COMPLETION_QUEUE, &queue, sizeof queue));
    }
    void set_status_callback(ws_status_callback cb) { detail::check(ws_set_status_callback(h_, cb)); }
    void set_context(void *context) {
        detail::check(ws_set_option(h_, WS_OPTION_CONTEXT_VALUE, &context, sizeof context));
    }
#endif

protected:
    template <class Rep, class Period>
    static std::uint32_t to_ms(std::chrono::duration<Rep, Period> d) noexcept {
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
        return ms <= 0 ? 0 : ms >= 0xffffffffLL ? 0xffffffffu : static_cast<std::uint32_t>(ms);
    }

    ws_handle h_ = 0;
};

/** A WebSocket connection: a client from open(), or a server side from listener::accept(). */
class websocket : public handle {
public:
    using handle::handle; // websocket(), explicit websocket(ws_handle) taking ownership

    // ---- non-throwing -------------------------------------------------------------------

    /** ws_open: parses the URL; no I/O. An empty websocket on failure. */
    static websocket open(cstring url, status &st) noexcept {
        return detail::make<websocket>(st, ws_open, url.c_str());
    }
    bool add_request_header(cstring name, cstring value, status &st) noexcept {
        return st.set(ws_add_request_header(h_, name.c_str(), value.c_str()));
    }
    bool connect(status &st) noexcept { return st.set(ws_connect(h_)); }
    bool send(std::uint32_t buffer_type, bytes data, status &st) noexcept {
        return st.set(ws_send(h_, buffer_type, data.data(), data.size()));
    }
    bool send_text(std::string_view text, status &st) noexcept {
        return send(WS_BUFFER_UTF8_MESSAGE, text, st);
    }
    bool send_binary(bytes data, status &st) noexcept {
        return send(WS_BUFFER_BINARY_MESSAGE, data, st);
    }
    /** One piece of the current message, at most buf.size() bytes. */
    received receive(mutable_bytes buf, status &st) noexcept {
        received r;
        st.set(ws_receive(h_, buf.data(), buf.size(), &r.size, &r.type));
        return r;
    }
    bool shutdown(std::uint16_t code, std::string_view reason, status &st) noexcept {
        return st.set(ws_shutdown(h_, code, reason.data(), reason.size()));
    }
    bool close(std::uint16_t code, std::string_view reason, status &st) noexcept {
        return st.set(ws_close(h_, code, reason.data(), reason.size()));
    }
    /** The peer's close status code, its reason into `reason` (room for 123 bytes + NUL). */
    bool close_status(std::uint16_t &code, char (&reason)[WS_MAX_CLOSE_REASON_LENGTH + 1],
                      status &st) noexcept {
        std::size_t n = 0;
        reason[0] = '\0';
        if (!st.set(ws_query_close_status(h_, &code, reason, WS_MAX_CLOSE_REASON_LENGTH, &n)))
            return false;
        reason[n] = '\0';
        return true;
    }

    // ---- asynchronous handles: start an operation; its one completion comes later --------
    // Each returns true when the operation started (WS_ERROR_IO_PENDING); otherwise `st`
    // holds the refusal and no completion follows. Buffers must stay valid until then.

    bool start_connect(status &st) noexcept { return st.set_pending(ws_connect(h_)); }
    bool start_send(std::uint32_t buffer_type, bytes data, status &st) noexcept {
        return st.set_pending(ws_send(h_, buffer_type, data.data(), data.size()));
    }
    bool start_receive(mutable_bytes buf, status &st) noexcept {
        return st.set_pending(ws_receive(h_, buf.data(), buf.size(), nullptr, nullptr));
    }
    bool start_shutdown(std::uint16_t code, std::string_view reason, status &st) noexcept {
        return st.set_pending(ws_shutdown(h_, code, reason.data(), reason.size()));
    }
    bool start_close(std::uint16_t code, std::string_view reason, status &st) noexcept {
        return st.set_pending(ws_close(h_, code, reason.data(), reason.size()));
    }

#ifndef WSHANDLE_NO_EXCEPTIONS
    // ---- throwing -----------------------------------------------------------------------

    void start_connect() { detail::check_pending(ws_connect(h_)); }
    void start_send(std::uint32_t buffer_type, bytes data) {
        detail::check_pending(ws_send(h_, buffer_type, data.data(), data.size()));
    }
    void start_receive(mutable_bytes buf) {
        detail::check_pending(ws_receive(h_, buf.data(), buf.size(), nullptr, nullptr));
    }
    void start_shutdown(std::uint16_t code = WS_CLOSE_STATUS_SUCCESS, std::string_view reason = {}) {
        detail::check_pending(ws_shutdown(h_, code, reason.data(), reason.size()));
    }
    void start_close(std::uint16_t code = WS_CLOSE_STATUS_SUCCESS, std::string_view reason = {}) {
        detail::check_pending(ws_close(h_, code, reason.data(), reason.size()));
    }

    static websocket open(cstring url) { return detail::make<websocket>(ws_open, url.c_str()); }
    void add_request_header(cstring name, cstring value) {
        detail::check(ws_add_request_header(h_, name.c_str(), value.c_str()));
    }
    void connect() { detail::check(ws_connect(h_)); }
    void send(std::uint32_t buffer_type, bytes data) {
        detail::check(ws_send(h_, buffer_type, data.data(), data.size()));
    }
    void send_text(std::string_view text) { send(WS_BUFFER_UTF8_MESSAGE, text); }
    void send_binary(bytes data) { send(WS_BUFFER_BINARY_MESSAGE, data); }
    received receive(mutable_bytes buf) {
        received r;
        detail::check(ws_receive(h_, buf.data(), buf.size(), &r.size, &r.type));
        return r;
    }
    /**
     * A whole message into `out` (replaced), piece by piece. Returns WS_BUFFER_UTF8_MESSAGE,
     * WS_BUFFER_BINARY_MESSAGE, or WS_BUFFER_CLOSE (out empty) at the peer's close frame.
     */
    std::uint32_t receive_message(std::string &out) {
        out.clear();
        char piece[16384];
        for (;;) {
            received r = receive(mutable_bytes(piece, sizeof piece));
            if (r.is_close())
                return r.type;
            out.append(piece, r.size);
            if (r.message_end())
                return r.type;
        }
    }
    void shutdown(std::uint16_t code = WS_CLOSE_STATUS_SUCCESS, std::string_view reason = {}) {
        detail::check(ws_shutdown(h_, code, reason.data(), reason.size()));
    }
    void close(std::uint16_t code = WS_CLOSE_STATUS_SUCCESS, std::string_view reason = {}) {
        detail::check(ws_close(h_, code, reason.data(), reason.size()));
    }
    wshandle::close_status close_status() const {
        wshandle::close_status cs;
        char reason[WS_MAX_CLOSE_REASON_LENGTH];
        std::size_t n = 0;
        detail::check(ws_query_close_status(h_, &cs.code, reason, sizeof reason, &n));
        cs.reason.assign(reason, n);
        return cs;
    }
    /** A header of the upgrade response (of the request, on an accepted connection). */
    std::string response_header(cstring name) const {
        std::size_t need = 0;
        ws_error e = ws_query_response_header(h_, name.c_str(), nullptr, 0, &need);
        if (e != WS_ERROR_INSUFFICIENT_BUFFER)
            detail::check(e);
        std::string v(need, '\0');
        std::size_t n = 0;
        detail::check(ws_query_response_header(h_, name.c_str(), v.data(), v.size(), &n));
        v.resize(n);
        return v;
    }
#endif
};

/** A listening socket: accept() returns connections that completed the upgrade. */
class listener : public handle {
public:
    using handle::handle; // listener(), explicit listener(ws_handle) taking ownership

    /** ws_listen: binds at once ("ws://127.0.0.1:0/path": any free port, see local_port()). */
    static listener listen(cstring url, status &st) noexcept {
        return detail::make<listener>(st, ws_listen, url.c_str());
    }
    websocket accept(status &st) noexcept { return detail::make<websocket>(st, ws_accept, h_); }
    /** Asynchronous listener: ACCEPT_COMPLETE carries the new connection's handle, which the
     *  caller then owns (wrap it: websocket(c.accepted)). */
    bool start_accept(status &st) noexcept { return st.set_pending(ws_accept(h_, nullptr)); }

#ifndef WSHANDLE_NO_EXCEPTIONS
    static listener listen(cstring url) { return detail::make<listener>(ws_listen, url.c_str()); }
    websocket accept() { return detail::make<websocket>(ws_accept, h_); }
    void start_accept() { detail::check_pending(ws_accept(h_, nullptr)); }
#endif
};

/** One completion from a queue: ws_completion (handle, context, status, io, result, accepted). */
using completion = ws_completion;

/**
 * A completion queue (queue mode of the asynchronous API): an event loop that no library
 * thread touches. wait() does the ready I/O on the calling thread and returns completions;
 * fd() is a level-triggered descriptor for an outside loop (epoll, libuv, Qt). Move-only;
 * the destructor closes the queue, which fails (and is retried by nothing) while a handle
 * bound to it has not had its HANDLE_CLOSING: release the connections first.
 */
class queue : public handle {
public:
    using handle::handle;

    static queue create(status &st) noexcept { return detail::make<queue>(st, ws_queue_create); }
    /** Up to `max` completions into `out`; 0 when `timeout_ms` passed with none (0: don't
     *  wait, 0xFFFFFFFF: wait forever). */
    std::size_t wait(completion *out, std::size_t max, std::uint32_t timeout_ms, status &st) noexcept {
        std::size_t n = 0;
        ws_error e = ws_queue_wait(h_, out, max, &n, timeout_ms);
        st.set(e == WS_ERROR_TIMEOUT ? WS_OK : e);
        return n;
    }
    int fd(status &st) const noexcept {
        int fd = -1;
        st.set(ws_queue_fd(h_, &fd));
        return fd;
    }

#ifndef WSHANDLE_NO_EXCEPTIONS
    static queue create() { return detail::make<queue>(ws_queue_create); }
    std::size_t wait(completion *out, std::size_t max, std::uint32_t timeout_ms) {
        std::size_t n = 0;
        ws_error e = ws_queue_wait(h_, out, max, &n, timeout_ms);
        if (e != WS_ERROR_TIMEOUT)
            detail::check(e);
        return n;
    }
    int fd() const {
        int fd = -1;
        detail::check(ws_queue_fd(h_, &fd));
        return fd;
    }
#endif
};

} // namespace wshandle

#endif /* WSHANDLE_HPP */
