use super::*;
use crate::apdu::Response;

#[test]
fn set_management_key_failures_name_their_own_step() {
    let key = AdminKey::piv_default();
    let mut flow = PivSetMgmtKey::new(
        MgmtAuthenticated {
            algorithm: Algorithm::TripleDes,
        },
        &key,
    );
    let mut buf = [0u8; 64];
    let Ok(Action::Send(cmd)) = flow.action(&mut buf) else {
        panic!("SET MANAGEMENT KEY expected")
    };
    assert_eq!((cmd.ins, cmd.data.len()), (0xFF, 3 + 24));
    let answer = Response::parse(&[0x6A, 0x80]).unwrap();
    assert_eq!(
        flow.handle(Event::Response(answer)),
        Err(FlowError::UnexpectedStatus {
            step: Step::SetManagementKey,
            status: Status::IncorrectData,
        })
    );
}
