//! The tile's fields: one fixed list (LogonUI asks for it once), each shown or hidden by the
//! form on show. The user tile image and the large text are on the tile in both states; the
//! rest only on the selected tile.

/// What kind of control a field is (the `CPFT_*` of the credential provider API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// The user tile image (a person placeholder).
    TileImage,
    /// Large text: the tile's name, then the user's name.
    LargeText,
    /// Small text.
    SmallText,
    /// A password field: typed text is hidden.
    Password,
    /// A plain edit field.
    EditText,
    /// The submit arrow, beside the form's last input field.
    SubmitButton,
    /// A link that runs a command.
    CommandLink,
}

/// A field's fixed description: its id, kind and label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescriptor {
    /// The field's id (its index in [`FIELDS`]).
    pub id: u32,
    /// What control it is.
    pub kind: FieldKind,
    /// Its label (shown by LogonUI as the placeholder of input fields).
    pub label: &'static str,
}

/// The tile's name.
pub const TILE_NAME: &str = "Unlock smart card";
/// The user tile image.
pub const IMAGE: u32 = 0;
/// Large text: the tile's name, then the user's name once the server verified the answers.
pub const TITLE: u32 = 1;
/// Small text under the name: the user's e-mail once verified.
pub const SUBTITLE: u32 = 2;
/// The form's prompt ("Enter new PIN to unlock the smart card.").
pub const PROMPT: u32 = 3;
/// The most security questions the tile shows.
pub const MAX_QUESTIONS: usize = 4;
/// The questions' small texts.
pub const QUESTIONS: [u32; MAX_QUESTIONS] = [4, 6, 8, 10];
/// The answers' password fields.
pub const ANSWERS: [u32; MAX_QUESTIONS] = [5, 7, 9, 11];
/// New PIN.
pub const NEW_PIN: u32 = 12;
/// Confirm new PIN.
pub const CONFIRM_PIN: u32 = 13;
/// The offline challenge, to read out to the help desk.
pub const CHALLENGE: u32 = 14;
/// The help desk's response (or the PUK).
pub const RESPONSE: u32 = 15;
/// The submit arrow.
pub const SUBMIT: u32 = 16;
/// Status text: the PIN rules and their violations, attempts left, what a failure means.
pub const STATUS: u32 = 17;
/// "Try again".
pub const RETRY: u32 = 18;
/// "Unlock offline".
pub const OFFLINE: u32 = 19;
/// How many fields the tile has.
pub const FIELD_COUNT: usize = 20;

const fn d(id: u32, kind: FieldKind, label: &'static str) -> FieldDescriptor {
    FieldDescriptor { id, kind, label }
}

use FieldKind::*;

/// Every field, in id order.
pub const FIELDS: [FieldDescriptor; FIELD_COUNT] = [
    d(IMAGE, TileImage, TILE_NAME),
    d(TITLE, LargeText, TILE_NAME),
    d(SUBTITLE, SmallText, "User"),
    d(PROMPT, SmallText, "Prompt"),
    d(QUESTIONS[0], SmallText, "Question 1"),
    d(ANSWERS[0], Password, "Answer"),
    d(QUESTIONS[1], SmallText, "Question 2"),
    d(ANSWERS[1], Password, "Answer"),
    d(QUESTIONS[2], SmallText, "Question 3"),
    d(ANSWERS[2], Password, "Answer"),
    d(QUESTIONS[3], SmallText, "Question 4"),
    d(ANSWERS[3], Password, "Answer"),
    d(NEW_PIN, Password, "New PIN"),
    d(CONFIRM_PIN, Password, "Confirm new PIN"),
    d(CHALLENGE, SmallText, "Challenge"),
    d(RESPONSE, EditText, "Response from your help desk"),
    d(SUBMIT, SubmitButton, "Submit"),
    d(STATUS, SmallText, "Status"),
    d(RETRY, CommandLink, "Try again"),
    d(OFFLINE, CommandLink, "Unlock offline"),
];

/// Whether the field holds something the person typed that is secret (answers, PINs, the
/// response or PUK): never echoed, wiped after use.
pub fn is_secret(id: u32) -> bool {
    ANSWERS.contains(&id) || id == NEW_PIN || id == CONFIRM_PIN || id == RESPONSE
}

/// Where a field shows (the `CPFS_*` states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Not shown.
    Hidden,
    /// On the selected tile only.
    Selected,
    /// On the tile, selected or not.
    Both,
}

/// A field as the current form shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldView {
    /// Where it shows.
    pub shown: Shown,
    /// Whether it takes the focus when the form appears (the form's first input field).
    pub focused: bool,
    /// Its text: for texts and links what they say; always empty for secret fields (their
    /// text is what the person typed, held by LogonUI and the tile only).
    pub text: String,
}

impl FieldView {
    /// A field the form does not show.
    pub fn hidden() -> Self {
        Self {
            shown: Shown::Hidden,
            focused: false,
            text: String::new(),
        }
    }

    /// Every field of the tile, none shown.
    pub fn all_hidden() -> Vec<Self> {
        FIELDS.iter().map(|_| Self::hidden()).collect()
    }
}

/// The whole tile as the current form shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// Every field, in id order.
    pub fields: Vec<FieldView>,
    /// The field the submit arrow sits beside.
    pub submit_beside: u32,
}

impl View {
    /// The field `id` (a hidden empty one for an unknown id).
    pub fn field(&self, id: u32) -> FieldView {
        self.fields
            .get(id as usize)
            .cloned()
            .unwrap_or_else(FieldView::hidden)
    }

    /// Whether field `id` is shown.
    pub fn shows(&self, id: u32) -> bool {
        self.field(id).shown != Shown::Hidden
    }

    /// Every shown text, one per line (for tests and logs: never holds secrets).
    pub fn texts(&self) -> String {
        self.fields
            .iter()
            .filter(|f| f.shown != Shown::Hidden && !f.text.is_empty())
            .map(|f| f.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One change LogonUI must be told of (through `ICredentialProviderCredentialEvents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `SetFieldState`.
    Shown(u32, Shown),
    /// `SetFieldInteractiveState`: focused or not.
    Focused(u32, bool),
    /// `SetFieldString` (never for secret fields, except to wipe them: see [`Change::Wipe`]).
    Text(u32, String),
    /// `SetFieldString(id, "")` on a secret field the tile wiped.
    Wipe(u32),
    /// `SetFieldSubmitButton`.
    SubmitBeside(u32),
}

impl View {
    /// What changed from `before` to `self`, then the wipes of `wiped` secret fields.
    pub fn changes_from(&self, before: &View, wiped: &[u32]) -> Vec<Change> {
        let mut changes = Vec::new();
        for (i, (new, old)) in self.fields.iter().zip(&before.fields).enumerate() {
            let id = i as u32;
            if new.text != old.text && !is_secret(id) {
                changes.push(Change::Text(id, new.text.clone()));
            }
            if new.shown != old.shown {
                changes.push(Change::Shown(id, new.shown));
            }
            if new.focused != old.focused {
                changes.push(Change::Focused(id, new.focused));
            }
        }
        if self.submit_beside != before.submit_beside {
            changes.push(Change::SubmitBeside(self.submit_beside));
        }
        changes.extend(wiped.iter().map(|&id| Change::Wipe(id)));
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(shown_status: bool, text: &str) -> View {
        let mut fields = FieldView::all_hidden();
        if shown_status {
            fields[STATUS as usize].shown = Shown::Selected;
        }
        fields[STATUS as usize].text = text.into();
        fields[NEW_PIN as usize].text = text.into();
        View {
            fields,
            submit_beside: CONFIRM_PIN,
        }
    }

    /// Only what changed is sent, secret fields' text never (only their wipe).
    #[test]
    fn changes_are_the_difference_and_never_a_secret() {
        let a = view(false, "");
        assert_eq!(a.changes_from(&a, &[]), vec![]);
        let b = view(true, "rules");
        assert_eq!(
            b.changes_from(&a, &[NEW_PIN]),
            vec![
                Change::Text(STATUS, "rules".into()),
                Change::Shown(STATUS, Shown::Selected),
                Change::Wipe(NEW_PIN),
            ]
        );
        assert_eq!(FIELDS.len(), FIELD_COUNT);
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(f.id as usize, i, "ids are indexes");
        }
    }
}
