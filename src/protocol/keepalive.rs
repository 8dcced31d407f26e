//! Keepalive pings and dead-peer detection as plain deadlines (`WS_OPTION_KEEPALIVE_INTERVAL`
//! and `WS_OPTION_KEEPALIVE_TIMEOUT`): both drivers ask when to wake and what to do then.

use std::time::{Duration, Instant};

/// What is due at a keepalive deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Nothing yet.
    Wait,
    /// Send a ping now.
    Ping,
    /// A ping went unanswered for the keepalive timeout: the peer is dead.
    Dead,
}

/// When the peer was last heard from, and whether a ping is out.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    last_rx: Instant,
    ping_sent: Option<Instant>,
}

impl Keepalive {
    /// Starts counting from `now`.
    pub fn new(now: Instant) -> Self {
        Keepalive {
            last_rx: now,
            ping_sent: None,
        }
    }

    /// Bytes arrived from the peer.
    pub fn seen_bytes(&mut self, now: Instant) {
        self.last_rx = now;
        self.ping_sent = None;
    }

    /// The next keepalive deadline (`interval` `None`: keepalive is off).
    pub fn due(&self, interval: Option<Duration>, timeout: Option<Duration>) -> Option<Instant> {
        let interval = interval?;
        Some(match (self.ping_sent, timeout) {
            (None, _) => self.last_rx + interval,
            (Some(t), Some(limit)) => t + limit,
            (Some(t), None) => t + interval,
        })
    }

    /// What is due at `now`; a ping is recorded as sent when it is asked for.
    pub fn tick(
        &mut self,
        now: Instant,
        interval: Option<Duration>,
        timeout: Option<Duration>,
    ) -> Tick {
        match self.due(interval, timeout) {
            Some(due) if now >= due => {
                if self.ping_sent.is_some() && timeout.is_some() {
                    return Tick::Dead;
                }
                self.ping_sent = Some(now);
                Tick::Ping
            }
            _ => Tick::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_then_detects_a_dead_peer() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut k = Keepalive::new(t0);
        assert_eq!(k.due(None, Some(ms(5))), None);
        assert_eq!(k.tick(t0 + ms(100), None, None), Tick::Wait);
        assert_eq!(k.due(Some(ms(10)), None), Some(t0 + ms(10)));
        assert_eq!(k.tick(t0 + ms(9), Some(ms(10)), Some(ms(5))), Tick::Wait);
        assert_eq!(k.tick(t0 + ms(10), Some(ms(10)), Some(ms(5))), Tick::Ping);
        assert_eq!(k.due(Some(ms(10)), Some(ms(5))), Some(t0 + ms(15)));
        assert_eq!(k.tick(t0 + ms(15), Some(ms(10)), Some(ms(5))), Tick::Dead);
        // an answer resets everything
        k.seen_bytes(t0 + ms(14));
        assert_eq!(k.tick(t0 + ms(15), Some(ms(10)), Some(ms(5))), Tick::Wait);
        // without a timeout, pings repeat every interval
        let mut k = Keepalive::new(t0);
        assert_eq!(k.tick(t0 + ms(10), Some(ms(10)), None), Tick::Ping);
        assert_eq!(k.tick(t0 + ms(19), Some(ms(10)), None), Tick::Wait);
        assert_eq!(k.tick(t0 + ms(20), Some(ms(10)), None), Tick::Ping);
    }
}
