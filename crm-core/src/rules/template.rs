//! Task title templates: text with `{placeholders}`.

use crate::error::{Error, Result};
use crate::model::customer::Customer;

use super::Rule;
use super::engine::DealRef;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template(Vec<Piece>);

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Name,
    Email,
    Stage,
    Owner,
    Attr(String),
    DealTitle,
    DealStage,
    Rule,
}

const PLACEHOLDERS: &[&str] = &[
    "name",
    "email",
    "stage",
    "owner",
    "attr.KEY",
    "deal.title",
    "deal.stage",
    "rule",
];

impl Template {
    /// Parses `{name}`, `{email}`, `{stage}`, `{owner}`, `{attr.KEY}`,
    /// `{deal.title}`, `{deal.stage}`, `{rule}`; `{{` and `}}` are braces.
    pub fn parse(text: &str) -> Result<Template> {
        let field = "title";
        if text.trim().is_empty() {
            return Err(Error::validation(field, "is empty"));
        }
        if text.chars().count() > 500 {
            return Err(Error::validation(field, "longer than 500 characters"));
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(Error::validation(
                        field,
                        "a '}' without its '{' (write '}}' for a brace)",
                    ));
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(Error::validation(
                                    field,
                                    "a '{' without its '}' (write '{{' for a brace)",
                                ));
                            }
                        }
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut lit)));
                    }
                    let name = name.trim();
                    pieces.push(match name {
                        "name" => Piece::Name,
                        "email" => Piece::Email,
                        "stage" => Piece::Stage,
                        "owner" => Piece::Owner,
                        "deal.title" => Piece::DealTitle,
                        "deal.stage" => Piece::DealStage,
                        "rule" => Piece::Rule,
                        _ if name.starts_with("attr.") && name.len() > 5 => {
                            Piece::Attr(name[5..].to_string())
                        }
                        _ => {
                            let hint = crate::import::nearest(name, PLACEHOLDERS)
                                .map(|n| format!(" (did you mean '{{{n}}}'?)"))
                                .unwrap_or_default();
                            return Err(Error::validation(
                                field,
                                format!(
                                    "unknown placeholder '{{{name}}}'{hint}; known: {}",
                                    PLACEHOLDERS
                                        .iter()
                                        .map(|p| format!("{{{p}}}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            ));
                        }
                    });
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template(pieces))
    }

    /// Whether it names the deal (only known to deal triggers).
    pub fn uses_deal(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Piece::DealTitle | Piece::DealStage))
    }

    /// The text for a customer (and deal); what is unknown is left empty.
    /// A result with nothing but blanks falls back to the rule's name.
    pub fn render(
        &self,
        customer: Option<&Customer>,
        deal: Option<&DealRef>,
        rule: &Rule,
    ) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Name => out.push_str(customer.map_or("", |c| &c.name)),
                Piece::Email => {
                    out.push_str(customer.and_then(|c| c.emails.first()).map_or("", |e| e))
                }
                Piece::Stage => out.push_str(customer.map_or("", |c| &c.lifecycle_stage)),
                Piece::Owner => out.push_str(
                    deal.and_then(|d| d.owner.as_deref())
                        .or_else(|| customer.and_then(|c| c.owner.as_deref()))
                        .unwrap_or(""),
                ),
                Piece::Attr(key) => {
                    if let Some(v) = customer.and_then(|c| c.attributes.get(key)) {
                        match v.to_json() {
                            serde_json::Value::String(s) => out.push_str(&s),
                            other => out.push_str(&other.to_string()),
                        }
                    }
                }
                Piece::DealTitle => out.push_str(deal.map_or("", |d| &d.title)),
                Piece::DealStage => out.push_str(deal.map_or("", |d| &d.stage)),
                Piece::Rule => out.push_str(&rule.name),
            }
        }
        let out = out.trim().to_string();
        if out.is_empty() {
            rule.name.clone()
        } else {
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Text written so that it reads literally: braces doubled.
    fn escaped(text: &str) -> String {
        text.replace('{', "{{").replace('}', "}}")
    }

    fn rule() -> Rule {
        let now = chrono::Utc::now();
        Rule {
            id: crate::model::ids::RuleId::new(),
            name: "the rule".into(),
            description: None,
            trigger: super::super::Trigger::Schedule,
            condition: None,
            actions: Vec::new(),
            enabled: true,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    proptest! {
        #[test]
        fn escaped_text_renders_as_itself(text in "[ -~]{1,80}") {
            prop_assume!(!text.trim().is_empty());
            let t = Template::parse(&escaped(&text)).unwrap();
            prop_assert_eq!(t.render(None, None, &rule()), text.trim());
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,80}") {
            let _ = Template::parse(&text);
        }
    }

    #[test]
    fn placeholders_and_braces_parse() {
        let t = Template::parse("Call {name} about {{plan}} {attr.plan}").unwrap();
        assert_eq!(
            t.0,
            vec![
                Piece::Text("Call ".into()),
                Piece::Name,
                Piece::Text(" about {plan} ".into()),
                Piece::Attr("plan".into()),
            ]
        );
        assert!(!t.uses_deal());
        assert!(Template::parse("{deal.title}").unwrap().uses_deal());
    }

    #[test]
    fn unknown_placeholders_and_stray_braces_are_refused_with_a_hint() {
        let e = Template::parse("Call {nme}").unwrap_err().to_string();
        assert!(
            e.contains("unknown placeholder '{nme}' (did you mean '{name}'?)"),
            "{e}"
        );
        assert!(Template::parse("a { b").is_err());
        assert!(Template::parse("a } b").is_err());
        assert!(Template::parse("  ").is_err());
    }
}
