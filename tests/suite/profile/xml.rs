//! A small element tree read with quick-xml, for checking SyncML documents and DDF files
//! exactly (entities resolved, whitespace inside text kept).

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// An element with its attributes, child elements and text.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The text directly inside the element, unescaped.
    pub text: String,
}

impl Element {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the element at `path` (child names separated by `/`).
    pub fn text_at(&self, path: &str) -> Option<&str> {
        let mut at = self;
        for name in path.split('/') {
            at = at.child(name)?;
        }
        Some(at.text.as_str())
    }

    /// The value of attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `bytes` (a document, or a fragment of several top-level elements).
pub fn parse(bytes: &[u8]) -> Vec<Element> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = Reader::from_reader(bytes);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut buffer = Vec::new();
    loop {
        match reader
            .read_event_into(&mut buffer)
            .expect("well-formed XML")
        {
            Event::Start(start) => {
                stack.push(element(&start));
            }
            Event::Empty(start) => {
                let e = element(&start);
                stack.last_mut().expect("open element").children.push(e);
            }
            Event::End(_) => {
                let done = stack.pop().expect("matching start");
                stack.last_mut().expect("parent").children.push(done);
            }
            Event::Text(t) => {
                // What a conforming parser hands on: line ends normalised.
                let text = t.xml10_content();
                stack.last_mut().expect("open element").text.push_str(&text);
            }
            Event::CData(c) => {
                let text = c.xml10_content();
                stack.last_mut().expect("open element").text.push_str(&text);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().expect("valid character reference") {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.into_inner();
                        resolve_predefined_entity(&name)
                            .unwrap_or_else(|| panic!("unknown entity &{name};"))
                            .to_owned()
                    }
                };
                stack
                    .last_mut()
                    .expect("open element")
                    .text
                    .push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    assert_eq!(stack.len(), 1, "every element is closed");
    stack.pop().map(|root| root.children).unwrap_or_default()
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Element {
    Element {
        name: start.name().as_ref().to_owned(),
        attributes: start
            .attributes()
            .map(|a| {
                let a = a.expect("valid attribute");
                (
                    a.key.as_ref().to_owned(),
                    a.normalized_value(XmlVersion::Implicit1_0)
                        .expect("valid value")
                        .into_owned(),
                )
            })
            .collect(),
        ..Element::default()
    }
}
