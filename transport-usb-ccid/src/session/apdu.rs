//! APDU level (short, and short + extended): one APDU per exchange, chained over several
//! XfrBlock / DataBlock messages with `wLevelParameter` / `bChainParameter` when it does not fit
//! one message.

use crate::pipe::Pipe;

use super::exchange::data_block;
use super::{Control, Error, Session, SessionError, Violation};
use crate::clock::Clock;
use crate::codec::{chain, RequestKind, HEADER_LEN};

/// Most DataBlocks in one chained response (a bound against a reader that never ends a chain).
const MAX_CHAIN_PARTS: usize = 1024;

impl<IO, C, K, const N: usize> Session<IO, C, K, N>
where
    IO: Pipe,
    C: Clock,
    K: Control,
{
    /// Sends a command longer than one message in parts (`wLevelParameter` 1 begin, 3 continue,
    /// 2 end), then collects the response to its last part. (The session sends a command that
    /// fits one message in line; this takes one of any length.)
    pub(super) async fn chained_command(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, SessionError<IO, K>> {
        let chunk = self.max_msg - HEADER_LEN;
        let mut rest = command;
        let mut first = true;
        loop {
            let (part, tail) = rest.split_at(rest.len().min(chunk));
            let level = match (first, tail.is_empty()) {
                (true, true) => chain::WHOLE,
                (true, false) => chain::BEGIN,
                (false, false) => chain::CONTINUE,
                (false, true) => chain::END,
            };
            let msg = self.encode(RequestKind::XfrBlock {
                bwi: 0,
                level,
                data: part,
            })?;
            self.drive(msg.len, msg.data).await?;
            if tail.is_empty() {
                // The last part: its reply starts the response.
                return self.chained_response(response).await;
            }
            match data_block(&self.rx, &mut self.powered) {
                // "Empty, send more" (some readers leave bChainParameter 0).
                Ok((_, [])) => {}
                Ok(_) | Err(Error::Protocol(Violation::UnexpectedReply(_))) => {
                    return Err(Error::Protocol(Violation::Chain))
                }
                Err(e) => return Err(e),
            }
            rest = tail;
            first = false;
        }
    }

    /// Collects the response whose first reply is in `rx` (checked again here), asking for
    /// each next part of a chained one.
    pub(super) async fn chained_response(
        &mut self,
        response: &mut [u8],
    ) -> Result<usize, SessionError<IO, K>> {
        let mut filled = 0usize;
        let mut overflow = false;
        for part in 0..MAX_CHAIN_PARTS {
            if part > 0 {
                let msg = self.encode(RequestKind::XfrBlock {
                    bwi: 0,
                    level: chain::MORE,
                    data: &[],
                })?;
                self.drive(msg.len, msg.data).await?;
            }
            let (c, data) = data_block(&self.rx, &mut self.powered)?;
            match response.get_mut(filled..filled + data.len()) {
                Some(dst) if !overflow => {
                    dst.copy_from_slice(data);
                    filled += data.len();
                }
                // Keep reading the chain to stay in step with the reader, then report.
                _ => overflow = true,
            }
            match u16::from(c) {
                chain::WHOLE | chain::END => {
                    return if overflow {
                        Err(Error::ResponseTooLong)
                    } else {
                        Ok(filled)
                    };
                }
                chain::BEGIN | chain::CONTINUE => {}
                _ => return Err(Error::Protocol(Violation::Chain)),
            }
        }
        Err(Error::Protocol(Violation::Chain))
    }
}
