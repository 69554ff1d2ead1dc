//! Per-user text in profile definitions: `{{display_name}}`, `{{user_email}}` and
//! `{{email_address}}` inside otherwise literal text. A template is parsed once, when its
//! definition loads, so an unknown variable is a load error rather than a surprise on a
//! device, and rendering is a walk over ready segments.

use std::borrow::Cow;
use std::fmt;

/// A value a template can refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variable {
    /// The name shown on sent mail: the account's display name for Email accounts (the
    /// owner's name when the account has none), the owner's display name for Exchange.
    DisplayName,
    /// The owner's email address, the user the account was imported onto.
    UserEmail,
    /// The account's own email address.
    EmailAddress,
}

impl Variable {
    /// Every variable, in the order they are listed in messages.
    pub const ALL: [Variable; 3] = [
        Variable::DisplayName,
        Variable::UserEmail,
        Variable::EmailAddress,
    ];

    /// The name written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Variable::DisplayName => "display_name",
            Variable::UserEmail => "user_email",
            Variable::EmailAddress => "email_address",
        }
    }

    fn from_name(name: &str) -> Option<Variable> {
        Variable::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// The values of the variables for one account.
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    /// `{{display_name}}`.
    pub display_name: &'a str,
    /// `{{user_email}}`.
    pub user_email: &'a str,
    /// `{{email_address}}`.
    pub email_address: &'a str,
}

impl<'a> Values<'a> {
    fn get(&self, variable: Variable) -> &'a str {
        match variable {
            Variable::DisplayName => self.display_name,
            Variable::UserEmail => self.user_email,
            Variable::EmailAddress => self.email_address,
        }
    }
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{name}}` names no known variable.
    #[error(
        "unknown variable {{{{{0}}}}} (known: {{{{display_name}}}}, {{{{user_email}}}}, {{{{email_address}}}})"
    )]
    UnknownVariable(String),
    /// `{{` without a closing `}}`.
    #[error("\"{{{{\" at character {0} is not closed by \"}}}}\"")]
    Unclosed(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(Variable),
}

/// Text with variables, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

impl Template {
    /// Parses `source`. Variables are written `{{name}}`, spaces inside the braces allowed.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                TemplateError::Unclosed(source[..source.len() - rest.len() + open].chars().count())
            })?;
            let name = after[..close].trim();
            let variable = Variable::from_name(name)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_owned()))?;
            segments.push(Segment::Var(variable));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            segments,
        })
    }

    /// The text as written in the definition.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal parts, for checks that apply to what the admin wrote.
    pub(crate) fn literals(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Text(t) => Some(t.as_str()),
            Segment::Var(_) => None,
        })
    }

    /// The text with the variables replaced. Borrows when there is nothing to replace or
    /// the whole template is one variable, which is the common case.
    pub fn render<'a>(&'a self, values: &Values<'a>) -> Cow<'a, str> {
        match self.segments.as_slice() {
            [] => Cow::Borrowed(""),
            [Segment::Text(t)] => Cow::Borrowed(t),
            [Segment::Var(v)] => Cow::Borrowed(values.get(*v)),
            segments => {
                let mut out = String::with_capacity(self.source.len() + 32);
                for segment in segments {
                    match segment {
                        Segment::Text(t) => out.push_str(t),
                        Segment::Var(v) => out.push_str(values.get(*v)),
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values<'static> = Values {
        display_name: "Adams, Alice \"Al\" <&>",
        user_email: "alice@example.com",
        email_address: "alice.adams@mail.example.com",
    };

    #[test]
    fn variables_are_replaced_and_text_is_kept() {
        let t =
            Template::parse("{{display_name}} ({{ email_address }}) of {{user_email}}!").unwrap();
        assert_eq!(
            t.render(&VALUES),
            "Adams, Alice \"Al\" <&> (alice.adams@mail.example.com) of alice@example.com!"
        );
    }

    #[test]
    fn plain_text_and_lone_variables_are_borrowed() {
        assert!(matches!(
            Template::parse("Work mail").unwrap().render(&VALUES),
            Cow::Borrowed("Work mail")
        ));
        assert!(matches!(
            Template::parse("{{user_email}}").unwrap().render(&VALUES),
            Cow::Borrowed("alice@example.com")
        ));
        assert_eq!(Template::parse("").unwrap().render(&VALUES), "");
    }

    #[test]
    fn an_unknown_variable_is_named() {
        let err = Template::parse("Hi {{ name }}").unwrap_err();
        assert_eq!(err, TemplateError::UnknownVariable("name".into()));
        assert_eq!(
            err.to_string(),
            "unknown variable {{name}} (known: {{display_name}}, {{user_email}}, {{email_address}})"
        );
    }

    #[test]
    fn an_unclosed_variable_says_where() {
        let err = Template::parse("Mail für {{display_name").unwrap_err();
        assert_eq!(err, TemplateError::Unclosed(9));
        assert_eq!(
            err.to_string(),
            "\"{{\" at character 9 is not closed by \"}}\""
        );
    }

    #[test]
    fn closing_braces_alone_are_literal_text() {
        let t = Template::parse("a }} b").unwrap();
        assert_eq!(t.render(&VALUES), "a }} b");
    }

    #[test]
    fn values_are_not_parsed_again() {
        let values = Values {
            display_name: "{{user_email}}",
            ..VALUES
        };
        let t = Template::parse("x {{display_name}}").unwrap();
        assert_eq!(t.render(&values), "x {{user_email}}");
    }
}
