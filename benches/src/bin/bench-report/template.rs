//! The template: `{{name}}` placeholders filled from a map, and the kept server section.

use std::collections::BTreeMap;

use crate::{ReportError, Result};

/// `template` with every `{{name}}` replaced by its value; a placeholder without a value, or a
/// value no placeholder uses, is an error (the template and the generator drifted apart).
pub(crate) fn fill(template: &str, values: &BTreeMap<&'static str, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut used = std::collections::BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ReportError("an unclosed {{ in the template".into()))?;
        let name = &after[..end];
        let value = values
            .get(name)
            .ok_or_else(|| ReportError(format!("the template's {{{{{name}}}}} has no value")))?;
        out.push_str(value);
        used.insert(name);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if let Some(unused) = values.keys().find(|k| !used.contains(*k)) {
        return Err(ReportError(format!("the template has no {{{{{unused}}}}}")));
    }
    Ok(out)
}

/// The server's own section of the file being replaced, kept as it is.
pub(crate) fn kept_server_section(old: &str) -> &str {
    old.find("\n## Unlock server")
        .map_or("", |i| old[i..].trim_end())
}
