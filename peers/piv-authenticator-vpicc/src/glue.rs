//! The APDU glue: one APDU through `apdu-dispatch` into the applet, and the two opt-in
//! host-compatibility rewrites (`--accept-short-aid`, `--answer-le-absent`).

use apdu_dispatch::{
    dispatch::ApduDispatch,
    interchanges::{Data, Requester},
    App,
};

use crate::{hex, log};

const PIV_AID_9: [u8; 9] = [0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00];

/// `--accept-short-aid`: `00 A4 04 00 05 A0 00 00 03 08 [Le]` becomes
/// `00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 [Le]`.
pub(crate) fn widen_short_piv_select(apdu: &[u8]) -> Option<Vec<u8>> {
    let (header, rest) = apdu.split_at_checked(5)?;
    if header[1..] != [0xA4, 0x04, 0x00, 0x05] || header[0] & 0x10 != 0 {
        return None;
    }
    let (aid, le) = rest.split_at_checked(5)?;
    if aid != &PIV_AID_9[..5] || le.len() > 1 {
        return None;
    }
    let mut out = header[..4].to_vec();
    out.push(PIV_AID_9.len() as u8);
    out.extend_from_slice(&PIV_AID_9);
    out.extend_from_slice(le);
    Some(out)
}

/// `--answer-le-absent`: a short command without Le that the dispatch answered
/// with `61xx` and no data gets its data fetched with GET RESPONSE here.
fn le_absent(apdu: &[u8]) -> bool {
    match iso7816::command::CommandView::try_from(apdu) {
        Ok(view) => {
            view.expected() == 0
                && !view.extended
                && view.class().chain().last_or_only()
                && view.instruction() != iso7816::Instruction::GetResponse
        }
        Err(_) => false,
    }
}

pub(crate) fn transmit_answering_le_absent(
    dispatch: &mut ApduDispatch<'_>,
    requester: &mut Requester<'_>,
    app: &mut dyn App,
    apdu: &[u8],
    verbose: bool,
) -> Vec<u8> {
    let mut response = transmit(dispatch, requester, app, apdu);
    if !(response.len() == 2 && response[0] == 0x61 && le_absent(apdu)) {
        return response;
    }
    let mut data = Vec::new();
    while response.len() >= 2 && response[response.len() - 2] == 0x61 {
        let get_response = [0x00, 0xC0, 0x00, 0x00, response[response.len() - 1]];
        response = transmit(dispatch, requester, app, &get_response);
        if verbose {
            log(format!(
                "--answer-le-absent: {} -> {}",
                hex(&get_response),
                hex(&response)
            ));
        }
        let sw_at = response.len().saturating_sub(2);
        data.extend_from_slice(&response[..sw_at]);
        response.drain(..sw_at);
    }
    data.extend_from_slice(&response);
    data
}

/// One APDU through apdu-dispatch into the applet.
pub(crate) fn transmit(
    dispatch: &mut ApduDispatch<'_>,
    requester: &mut Requester<'_>,
    app: &mut dyn App,
    apdu: &[u8],
) -> Vec<u8> {
    let Ok(request) = Data::from_slice(apdu) else {
        // Longer than the dispatch's 3072-byte interchange buffer.
        return vec![0x67, 0x00];
    };
    if requester.request(request).is_err() {
        let _ = requester.cancel();
        return vec![0x6F, 0x00];
    }
    dispatch.poll(&mut [app]);
    match requester.take_response() {
        Some(response) => response.to_vec(),
        None => {
            let _ = requester.cancel();
            vec![0x6F, 0x00]
        }
    }
}
