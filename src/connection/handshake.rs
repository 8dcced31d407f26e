//! The client's HTTP upgrade over the blocking transport: the sans-IO
//! [`ClientHandshake`](crate::protocol::handshake::client::ClientHandshake) decides, this only
//! moves its bytes.

use std::time::Instant;

use super::io::{read_until, write_all, Limit, Signals};
use super::url::WsUrl;
use crate::error::{Error, Result};
use crate::protocol::handshake::client::{ClientHandshake, Offer, ResponseInfo, Upgraded};
use crate::transport::Transport;

/// Sends the upgrade request and checks the response. `early` holds bytes that already
/// arrived on the stream (after a proxy's answer). `info` receives the response's HTTP
/// status and headers as soon as they are known, even when the upgrade then fails.
pub fn client_upgrade(
    t: &Transport,
    sig: &Signals,
    url: &WsUrl,
    offer: Offer,
    early: &[u8],
    deadline: Option<Instant>,
    info: &mut ResponseInfo,
) -> Result<Upgraded> {
    let (mut hs, request) = ClientHandshake::new(&url.uri, offer)?;
    write_all(
        t,
        sig,
        &request,
        Limit::At(deadline),
        "the upgrade request",
        "WS_OPTION_CONNECT_TIMEOUT",
    )?;
    let result = match hs.feed(early) {
        Ok(None) => read_until(
            t,
            sig,
            deadline,
            "the upgrade response",
            "WS_OPTION_CONNECT_TIMEOUT",
            &|| {
                Error::connection(
                    "the server closed the connection before answering the upgrade request",
                )
            },
            |bytes| hs.feed(bytes),
        ),
        Ok(Some(up)) => Ok(up),
        Err(e) => Err(e),
    };
    *info = hs.take_response();
    result
}
