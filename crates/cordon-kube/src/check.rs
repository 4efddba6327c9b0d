//! `cordon kube check`: offline validation of a manifest, with `file:line` for every finding.
//!
//! * Core objects (ConfigMap, NetworkPolicy, Secret, ...) against schemas generated from the
//!   k8s-openapi types, made strict: a field the type does not have is an error, as with
//!   `kubectl --validate=strict`.
//! * agent-sandbox objects against their CRD's `openAPIV3Schema` (same strictness; its
//!   `metadata` against ObjectMeta's schema) and its `x-kubernetes-validations` CEL rules. A
//!   transition rule (one that reads `oldSelf`) needs the previous version of the object
//!   (`--old FILE`); without it the rule is listed as not evaluated, never skipped silently.

use std::collections::BTreeMap;
use std::path::Path;

use jsonschema::Validator;
use serde_json::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One finding: an error (the manifest is not valid) or a note (something not checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line in the file.
    pub line: usize,
    /// `true`: invalid; `false`: a note.
    pub error: bool,
    /// One line.
    pub message: String,
}

/// A CEL rule of a CRD, at a place in its schema.
#[derive(Debug, Clone)]
struct CelRule {
    /// Property names from the root, `*` for array items and map values.
    at: Vec<String>,
    rule: String,
    message: String,
}

struct CrdVersion {
    validator: Validator,
    rules: Vec<CelRule>,
}

/// The schemas: core types from k8s-openapi, agent-sandbox types from CRD files.
pub struct Schemas {
    core: BTreeMap<(String, String), Validator>,
    object_meta: Validator,
    crds: BTreeMap<(String, String), CrdVersion>,
}

fn strict(mut schema: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                let preserve = m
                    .get("x-kubernetes-preserve-unknown-fields")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if m.contains_key("properties")
                    && !m.contains_key("additionalProperties")
                    && !preserve
                {
                    m.insert("additionalProperties".into(), Value::Bool(false));
                }
                for (_, child) in m.iter_mut() {
                    walk(child);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}

fn core_schema<T: schemars::JsonSchema>() -> Result<Validator, String> {
    let schema = serde_json::to_value(schemars::schema_for!(T))
        .map_err(|e| format!("cannot build a schema: {e}"))?;
    jsonschema::options()
        .should_validate_formats(true)
        .build(&strict(schema))
        .map_err(|e| format!("cannot build a schema: {e}"))
}

macro_rules! core_kinds {
    ($($api:literal $kind:literal => $ty:ty),* $(,)?) => {
        fn core_validators() -> Result<BTreeMap<(String, String), Validator>, String> {
            let mut m = BTreeMap::new();
            $( m.insert(($api.to_string(), $kind.to_string()), core_schema::<$ty>()?); )*
            Ok(m)
        }
    };
}

core_kinds! {
    "v1" "ConfigMap" => k8s_openapi::api::core::v1::ConfigMap,
    "v1" "Secret" => k8s_openapi::api::core::v1::Secret,
    "v1" "Pod" => k8s_openapi::api::core::v1::Pod,
    "v1" "Service" => k8s_openapi::api::core::v1::Service,
    "v1" "ServiceAccount" => k8s_openapi::api::core::v1::ServiceAccount,
    "v1" "PersistentVolumeClaim" => k8s_openapi::api::core::v1::PersistentVolumeClaim,
    "v1" "Namespace" => k8s_openapi::api::core::v1::Namespace,
    "networking.k8s.io/v1" "NetworkPolicy" => k8s_openapi::api::networking::v1::NetworkPolicy,
    "node.k8s.io/v1" "RuntimeClass" => k8s_openapi::api::node::v1::RuntimeClass,
}

impl Schemas {
    /// Core schemas, plus every served version of each CRD file (`*.yaml`) in `crd_dir`.
    pub fn load(crd_dir: Option<&Path>) -> Result<Schemas, String> {
        let mut crds = BTreeMap::new();
        if let Some(dir) = crd_dir {
            let mut files: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| format!("{}: cannot read: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| format!("{}: cannot read: {e}", f.display()))?;
                add_crd(&mut crds, &f, &text)?;
            }
        }
        Ok(Schemas {
            core: core_validators()?,
            object_meta: core_schema::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(
            )?,
            crds,
        })
    }

    /// The kinds an agent-sandbox CRD file gave (`group/version Kind`), sorted.
    pub fn crd_kinds(&self) -> Vec<String> {
        self.crds.keys().map(|(a, k)| format!("{a} {k}")).collect()
    }
}

fn add_crd(
    crds: &mut BTreeMap<(String, String), CrdVersion>,
    file: &Path,
    text: &str,
) -> Result<(), String> {
    let crd: Value =
        serde_norway::from_str(text).map_err(|e| format!("{}: not YAML: {e}", file.display()))?;
    if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
        return Ok(());
    }
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default();
        let schema = &v["schema"]["openAPIV3Schema"];
        let mut rules = Vec::new();
        collect_rules(schema, &mut Vec::new(), &mut rules);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&strict(schema.clone()))
            .map_err(|e| format!("{}: {group}/{name} {kind}: bad schema: {e}", file.display()))?;
        crds.insert(
            (format!("{group}/{name}"), kind.to_string()),
            CrdVersion { validator, rules },
        );
    }
    Ok(())
}

fn collect_rules(s: &Value, at: &mut Vec<String>, out: &mut Vec<CelRule>) {
    for r in s["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        out.push(CelRule {
            at: at.clone(),
            rule: r["rule"].as_str().unwrap_or_default().to_string(),
            message: r["message"]
                .as_str()
                .unwrap_or("a validation rule failed")
                .to_string(),
        });
    }
    if let Some(props) = s["properties"].as_object() {
        for (k, child) in props {
            at.push(k.clone());
            collect_rules(child, at, out);
            at.pop();
        }
    }
    for key in ["items", "additionalProperties"] {
        if s[key].is_object() {
            at.push("*".into());
            collect_rules(&s[key], at, out);
            at.pop();
        }
    }
}

/// Every value at `at` in `v`, with its JSON pointer.
fn select<'a>(v: &'a Value, at: &[String], ptr: String, out: &mut Vec<(String, &'a Value)>) {
    let Some((first, rest)) = at.split_first() else {
        out.push((ptr, v));
        return;
    };
    match (first.as_str(), v) {
        ("*", Value::Array(a)) => {
            for (i, x) in a.iter().enumerate() {
                select(x, rest, format!("{ptr}/{i}"), out);
            }
        }
        ("*", Value::Object(m)) => {
            for (k, x) in m {
                select(x, rest, format!("{ptr}/{}", escape(k)), out);
            }
        }
        (key, Value::Object(m)) => {
            if let Some(x) = m.get(key) {
                select(x, rest, format!("{ptr}/{}", escape(key)), out);
            }
        }
        _ => {}
    }
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Lines of every key and item of each document, by JSON pointer.
#[derive(Default)]
struct Lines {
    docs: Vec<BTreeMap<String, usize>>,
    stack: Vec<Frame>,
}

enum Frame {
    /// A mapping: the pointer, and the key just read (waiting for its value).
    Map(String, Option<String>),
    /// A sequence: the pointer and the next index.
    Seq(String, usize),
}

impl Lines {
    /// The pointer of the value about to start, and records its line.
    fn value_start(&mut self, line: usize) -> Option<String> {
        let ptr = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Map(p, key)) => {
                let k = key.take()?;
                format!("{p}/{}", escape(&k))
            }
            Some(Frame::Seq(p, i)) => {
                let ptr = format!("{p}/{i}");
                *i += 1;
                ptr
            }
        };
        if let Some(doc) = self.docs.last_mut() {
            doc.entry(ptr.clone()).or_insert(line);
        }
        Some(ptr)
    }
}

impl MarkedEventReceiver for Lines {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.docs.push(BTreeMap::new());
                self.stack.clear();
            }
            Event::MappingStart(..) => {
                let ptr = self.value_start(line).unwrap_or_default();
                self.stack.push(Frame::Map(ptr, None));
            }
            Event::SequenceStart(..) => {
                let ptr = self.value_start(line).unwrap_or_default();
                self.stack.push(Frame::Seq(ptr, 0));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(text, ..) => {
                if let Some(Frame::Map(p, key @ None)) = self.stack.last_mut() {
                    // A key: the line of `key:` is where its value's errors point.
                    let ptr = format!("{p}/{}", escape(&text));
                    if let Some(doc) = self.docs.last_mut() {
                        doc.entry(ptr).or_insert(line);
                    }
                    *key = Some(text);
                } else {
                    self.value_start(line);
                }
            }
            Event::Alias(_) => {
                self.value_start(line);
            }
            _ => {}
        }
    }
}

/// The line of `ptr` in `lines`, or of its nearest ancestor that has one.
fn line_of(lines: &BTreeMap<String, usize>, ptr: &str) -> usize {
    let mut p = ptr.to_string();
    loop {
        if let Some(l) = lines.get(&p) {
            return *l;
        }
        match p.rfind('/') {
            Some(i) => p.truncate(i),
            None => return lines.get("").copied().unwrap_or(1),
        }
    }
}

/// One parsed document with the lines of its keys.
struct Doc {
    value: Value,
    lines: BTreeMap<String, usize>,
}

fn parse_docs(text: &str) -> Result<Vec<Doc>, Finding> {
    let mut lines = Lines::default();
    Parser::new_from_str(text)
        .load(&mut lines, true)
        .map_err(|e| Finding {
            line: e.marker().line(),
            error: true,
            message: format!("not YAML: {}", e.info()),
        })?;
    let mut out = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(de).map_err(|e| Finding {
            line: e.location().map_or(1, |l| l.line()),
            error: true,
            message: format!("not valid YAML for Kubernetes: {e}"),
        })?;
        let lines = lines.docs.get(i).cloned().unwrap_or_default();
        out.push(Doc { value, lines });
    }
    Ok(out)
}

fn ident(v: &Value) -> (String, String, String) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (s("apiVersion"), s("kind"), name)
}

/// Checks every document of `text`; `old` is the previous version of the manifest, for
/// transition rules. Findings are in document order.
pub fn check(schemas: &Schemas, text: &str, old: Option<&str>) -> Vec<Finding> {
    let docs = match parse_docs(text) {
        Ok(d) => d,
        Err(f) => return vec![f],
    };
    let old_docs = match old.map(parse_docs) {
        Some(Ok(d)) => d,
        Some(Err(mut f)) => {
            f.message = format!("--old: {}", f.message);
            return vec![f];
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| !d.value.is_null()) {
        let at = |ptr: &str| line_of(&doc.lines, ptr);
        let (api, kind, name) = ident(&doc.value);
        let mut err = |ptr: &str, message: String| {
            out.push(Finding {
                line: at(ptr),
                error: true,
                message,
            })
        };
        if !doc.value.is_object() {
            err(
                "",
                "a document must be a Kubernetes object (a mapping)".into(),
            );
            continue;
        }
        if api.is_empty() || kind.is_empty() {
            err("", "apiVersion and kind are required".into());
            continue;
        }
        let what = format!("{kind} {name}");
        let key = (api.clone(), kind.clone());
        if let Some(v) = schemas.core.get(&key) {
            for e in v.iter_errors(&doc.value) {
                err(&pointer(&e), format!("{what}: {}", describe(&e)));
            }
            continue;
        }
        let Some(crd) = schemas.crds.get(&key) else {
            let hint = if api.contains("agents.x-k8s.io") {
                " (pass --crds DIR with the agent-sandbox CRD files)"
            } else {
                ""
            };
            err("/kind", format!("{what}: no schema for {api} {kind}{hint}"));
            continue;
        };
        for e in crd.validator.iter_errors(&doc.value) {
            err(&pointer(&e), format!("{what}: {}", describe(&e)));
        }
        if let Some(m) = doc.value.get("metadata") {
            for e in schemas.object_meta.iter_errors(m) {
                err(
                    &format!("/metadata{}", pointer(&e)),
                    format!("{what}: metadata: {}", describe(&e)),
                );
            }
        }
        let old_value = old_docs
            .iter()
            .map(|d| &d.value)
            .find(|v| ident(v) == ident(&doc.value));
        for rule in &crd.rules {
            let mut here = Vec::new();
            select(&doc.value, &rule.at, String::new(), &mut here);
            for (ptr, value) in here {
                let old_here = old_value.and_then(|o| o.pointer(&ptr));
                let transition = rule.rule.contains("oldSelf");
                if transition && old_here.is_none() {
                    out.push(Finding {
                        line: at(&ptr),
                        error: false,
                        message: format!(
                            "{what}: rule not evaluated (a transition rule; it needs the previous version: --old FILE): {}",
                            rule.rule.split_whitespace().collect::<Vec<_>>().join(" ")
                        ),
                    });
                    continue;
                }
                match eval(&rule.rule, value, old_here) {
                    Ok(true) => {}
                    Ok(false) => out.push(Finding {
                        line: at(&ptr),
                        error: true,
                        message: format!(
                            "{what}: {} (rule: {})",
                            rule.message,
                            one_line(&rule.rule)
                        ),
                    }),
                    Err(e) => out.push(Finding {
                        line: at(&ptr),
                        error: true,
                        message: format!(
                            "{what}: rule could not be evaluated ({e}): {}",
                            one_line(&rule.rule)
                        ),
                    }),
                }
            }
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where an error points: the unexpected field itself for an unknown field, else the value.
fn pointer(e: &jsonschema::ValidationError<'_>) -> String {
    let at = e.instance_path().as_str().to_string();
    match e.kind() {
        jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
            match unexpected.first() {
                Some(k) => format!("{at}/{}", escape(k)),
                None => at,
            }
        }
        _ => at,
    }
}

fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path().as_str();
    let path = if path.is_empty() { "/" } else { path };
    format!("{path}: {e}")
}

/// Evaluates one CEL rule with `self` (and `oldSelf`) bound.
fn eval(rule: &str, value: &Value, old: Option<&Value>) -> Result<bool, String> {
    let program = cel::Program::compile(rule).map_err(|e| format!("cannot parse: {e}"))?;
    let mut ctx = cel::Context::default();
    let to = |v: &Value| cel::to_value(v).map_err(|e| format!("cannot convert: {e}"));
    ctx.add_variable_from_value("self", to(value)?);
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to(o)?);
    }
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("the rule gave {other:?}, not a boolean")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
