//! The `Sec-WebSocket-Extensions` exchange for permessage-deflate (RFC 7692 §7.1).
//!
//! A client builds one offer from its [`Settings`] and checks the server's answer; a server
//! takes the first offer in the client's list it can honour and builds its answer. Both yield
//! an [`Agreed`]: what each direction may do. An offer asking us to compress with an 8-bit
//! window is declined (zlib's raw deflate cannot), never accepted and then broken.

use super::{Settings, MAX_WINDOW_BITS, MIN_WINDOW_BITS};

const NAME: &str = "permessage-deflate";

/// What the handshake agreed, seen from this endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Our compressor's window bits (9-15).
    pub send_bits: u8,
    /// Whether we may keep our compression context between messages.
    pub send_takeover: bool,
    /// The window bits our decompressor needs (9-15; an 8-bit peer window decodes with 9).
    pub recv_bits: u8,
    /// Whether the peer may keep its context (then our decompressor must keep its window).
    pub recv_takeover: bool,
    /// Our compression level.
    pub level: u8,
    /// Messages sent whole and shorter than this go uncompressed.
    pub threshold: u32,
}

/// The parameters of one permessage-deflate element. A window-bits parameter is
/// `Some(None)` when present without a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// An extension element: its name and its parameters with their values.
type Element<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// Splits a header value into extension elements.
fn elements(header: &str) -> Vec<Element<'_>> {
    header
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut parts = e.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                    None => (p, None),
                })
                .collect();
            (name, params)
        })
        .collect()
}

/// Parses one element's parameters; `None` for an unknown or repeated parameter or a bad
/// value (RFC 7692 §7.1: such an offer is declined, such a response fails the connection).
fn params(list: &[(&str, Option<&str>)]) -> Option<Params> {
    let bits = |v: Option<&str>| -> Option<Option<u8>> {
        match v {
            None => Some(None),
            Some(s) => {
                // 8-15, a decimal integer without leading zeroes
                let ok = (1..=2).contains(&s.len())
                    && !s.starts_with('0')
                    && s.bytes().all(|b| b.is_ascii_digit());
                let n: u8 = if ok { s.parse().ok()? } else { return None };
                (8..=MAX_WINDOW_BITS).contains(&n).then_some(Some(n))
            }
        }
    };
    let mut p = Params::default();
    for &(k, v) in list {
        match k.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if !p.server_no_context_takeover && v.is_none() => {
                p.server_no_context_takeover = true
            }
            "client_no_context_takeover" if !p.client_no_context_takeover && v.is_none() => {
                p.client_no_context_takeover = true
            }
            "server_max_window_bits" if p.server_max_window_bits.is_none() => {
                p.server_max_window_bits = Some(bits(v)?)
            }
            "client_max_window_bits" if p.client_max_window_bits.is_none() => {
                p.client_max_window_bits = Some(bits(v)?)
            }
            _ => return None,
        }
    }
    Some(p)
}

/// The client's offer. It always says `client_max_window_bits` (we can use any window the
/// server picks, but 8) and, without context takeover, asks for none in either direction
/// (`client_no_context_takeover` is then also our promise, RFC 7692 §7.1.1.2).
pub fn client_offer(s: &Settings) -> String {
    let mut offer = String::from(NAME);
    if !s.context_takeover {
        offer.push_str("; client_no_context_takeover; server_no_context_takeover");
    }
    offer.push_str("; client_max_window_bits");
    if s.window_bits < MAX_WINDOW_BITS {
        offer.push_str(&format!("; server_max_window_bits={}", s.window_bits));
    }
    offer
}

/// Checks the server's `Sec-WebSocket-Extensions` answer to [`client_offer`] (`offered`:
/// our settings, `None` when we offered nothing). No header, or an empty one, means no
/// compression; an answer we cannot honour is an error that fails the connection.
pub fn accept_response(
    offered: Option<&Settings>,
    header: Option<&str>,
) -> Result<Option<Agreed>, String> {
    let Some(header) = header.filter(|h| !h.trim().is_empty()) else {
        return Ok(None);
    };
    let Some(s) = offered else {
        return Err("the server chose a WebSocket extension, but none was offered".into());
    };
    let list = elements(header);
    let [(name, list)] = &list[..] else {
        return Err(format!(
            "the server answered with extensions that were not offered: {header:?}"
        ));
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return Err(format!(
            "the server chose the extension {name:?}, which was not offered"
        ));
    }
    let p = params(list).ok_or_else(|| {
        format!("the server's permessage-deflate parameters are invalid: {header:?}")
    })?;
    let send_bits = match p.client_max_window_bits {
        None => s.window_bits,
        Some(None) => {
            return Err("the server's client_max_window_bits has no value".into());
        }
        Some(Some(8)) => {
            return Err(
                "the server asked for an 8-bit compression window, which zlib cannot compress with"
                    .into(),
            );
        }
        Some(Some(n)) => n.min(s.window_bits),
    };
    let recv_bits = match p.server_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(None) => {
            return Err("the server's server_max_window_bits has no value".into());
        }
        Some(Some(n)) => n.max(MIN_WINDOW_BITS),
    };
    Ok(Some(Agreed {
        send_bits,
        send_takeover: s.context_takeover && !p.client_no_context_takeover,
        recv_bits,
        recv_takeover: !p.server_no_context_takeover,
        level: s.level,
        threshold: s.threshold,
    }))
}

/// A server's choice among the client's offers (every `Sec-WebSocket-Extensions` header of
/// the request, joined with commas): the first permessage-deflate offer it can honour, with
/// the response header value to send. `None` declines compression.
pub fn answer_offers(s: &Settings, header: &str) -> Option<(String, Agreed)> {
    elements(header)
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, list)| answer(s, &params(list)?))
}

fn answer(s: &Settings, p: &Params) -> Option<(String, Agreed)> {
    let mut response = String::from(NAME);
    // our compressor: within the client's server_max_window_bits; an 8-bit window declines
    let send_bits = match p.server_max_window_bits {
        Some(None) | Some(Some(8)) => return None,
        Some(Some(n)) => {
            let bits = n.min(s.window_bits);
            response.push_str(&format!("; server_max_window_bits={bits}"));
            bits
        }
        None => s.window_bits,
    };
    let send_takeover = s.context_takeover && !p.server_no_context_takeover;
    if !send_takeover {
        response.push_str("; server_no_context_takeover");
    }
    // A client's client_no_context_takeover is only a hint (RFC 7692 §7.1.1.2), and some
    // (Autobahn) send it to mean "I accept being told": only our answer binds the client.
    let recv_takeover = s.context_takeover;
    if !recv_takeover {
        response.push_str("; client_no_context_takeover");
    }
    // the client's window: limited to ours when it lets us say so
    let recv_bits = match p.client_max_window_bits {
        None => MAX_WINDOW_BITS,
        Some(offered) => {
            let bits = offered.unwrap_or(MAX_WINDOW_BITS).min(s.window_bits);
            response.push_str(&format!("; client_max_window_bits={bits}"));
            bits.max(MIN_WINDOW_BITS)
        }
    };
    Some((
        response,
        Agreed {
            send_bits,
            send_takeover,
            recv_bits,
            recv_takeover,
            level: s.level,
            threshold: s.threshold,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bits: u8, takeover: bool) -> Settings {
        Settings {
            window_bits: bits,
            context_takeover: takeover,
            ..Settings::default()
        }
    }

    #[test]
    fn client_offers() {
        assert_eq!(
            client_offer(&settings(15, true)),
            "permessage-deflate; client_max_window_bits"
        );
        assert_eq!(
            client_offer(&settings(12, false)),
            "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; server_max_window_bits=12"
        );
    }

    #[test]
    fn client_checks_responses() {
        let s = settings(12, true);
        assert_eq!(accept_response(Some(&s), None), Ok(None));
        assert_eq!(accept_response(None, Some("")), Ok(None));
        assert!(accept_response(None, Some("permessage-deflate")).is_err());
        assert_eq!(accept_response(Some(&s), Some(" ")), Ok(None));
        let a = accept_response(Some(&s), Some("permessage-deflate"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.send_bits, a.send_takeover, a.recv_bits, a.recv_takeover),
            (12, true, 15, true)
        );
        let a = accept_response(
            Some(&s),
            Some("Permessage-Deflate; server_max_window_bits=8; client_max_window_bits=9; client_no_context_takeover; server_no_context_takeover"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (a.send_bits, a.send_takeover, a.recv_bits, a.recv_takeover),
            (9, false, 9, false)
        );
        for bad in [
            "x-webkit-deflate-frame",
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=4294967305",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1",
        ] {
            assert!(accept_response(Some(&s), Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_answers_offers() {
        let s = settings(12, true);
        // Chrome's offer
        let (r, a) = answer_offers(&s, "permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(r, "permessage-deflate; client_max_window_bits=12");
        assert_eq!(
            (a.send_bits, a.send_takeover, a.recv_bits, a.recv_takeover),
            (12, true, 12, true)
        );
        // no client_max_window_bits: the client may use 15
        let (r, a) = answer_offers(&s, "permessage-deflate").unwrap();
        assert_eq!(r, "permessage-deflate");
        assert_eq!(a.recv_bits, 15);
        // the first offer we can honour wins; an 8-bit server window and bad ones are declined
        let (r, a) = answer_offers(
            &s,
            "x-foo, permessage-deflate; server_max_window_bits=8, permessage-deflate; bogus, permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_max_window_bits=8",
        )
        .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_max_window_bits=8"
        );
        assert_eq!(
            (a.send_bits, a.send_takeover, a.recv_bits, a.recv_takeover),
            (10, false, 9, true)
        );
        assert_eq!(
            answer_offers(&s, "permessage-deflate; server_max_window_bits=8"),
            None
        );
        assert_eq!(
            answer_offers(&s, "permessage-deflate; server_max_window_bits=99999999999"),
            None
        );
        assert_eq!(answer_offers(&s, ""), None);
        // without context takeover we ask the client for none too
        let (r, a) = answer_offers(&settings(15, false), "permessage-deflate").unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert!(!a.send_takeover && !a.recv_takeover);
    }

    #[test]
    fn our_offer_is_accepted_by_our_answer() {
        for bits in 9..=15 {
            for takeover in [false, true] {
                let s = settings(bits, takeover);
                let (response, server) = answer_offers(&s, &client_offer(&s)).unwrap();
                let client = accept_response(Some(&s), Some(&response)).unwrap().unwrap();
                assert_eq!(client.send_bits, server.recv_bits.min(client.send_bits));
                assert!(server.send_bits <= client.recv_bits);
                assert!(client.send_bits <= server.recv_bits);
                assert_eq!(client.send_takeover, server.recv_takeover);
                assert_eq!(server.send_takeover, client.recv_takeover);
            }
        }
    }
}
