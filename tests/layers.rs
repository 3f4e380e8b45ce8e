//! The layering rule of `src/`, checked on every `cargo test`: each top-level module may import
//! only modules of a lower layer (docs/architecture.md, "Layers"), and only `platform` may name
//! the Workers runtime (`worker::`). A new top-level module must be given a layer here.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom to top. Modules in one row are independent of each other: an import between them
/// fails like an upward one, so the order stays a strict hierarchy.
const LAYERS: &[&[&str]] = &[
    &["crypto", "http", "url_rules"],
    &["mcp", "vault"],
    &["config", "observe"],
    &["store", "outbound", "routes"],
    // The policy engine: pure, over the records of `store`; read by the snapshot and above.
    &["rules"],
    &["snapshot"],
    &["context"],
    &["policy"],
    &["upstream_auth"],
    &["gateway"],
    &["oauth_server"],
    &["admin"],
    // The web console's sign-in and session endpoints (its pages are static assets).
    &["console"],
    // Native end-to-end tests of the core, which drive the admin API and the gateway together.
    &["e2e_tests"],
    &["platform"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/gateway/relay.rs` → `gateway`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// Every top-level module a source text names through `crate::`, including grouped imports
/// (`use crate::{a, b::c}`). Comments are skipped.
fn crate_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            // `$crate::` and identifiers ending in `crate` are not paths into this crate.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let body = group.split('}').next().unwrap_or("");
                out.extend(body.split(',').filter_map(|item| {
                    let head = item.trim().split("::").next()?.trim();
                    (!head.is_empty()).then(|| head.to_string())
                }));
            } else {
                let head: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !head.is_empty() {
                    out.push(head);
                }
            }
        }
    }
    out
}

#[test]
fn imports_go_down_the_layers_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut violations: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        let Some(own) = layer_of(&module) else {
            violations
                .entry(module.clone())
                .or_default()
                .push("not assigned to a layer".into());
            continue;
        };
        let text = fs::read_to_string(file).expect("read source");
        for target in crate_refs(&text) {
            if target == module {
                continue;
            }
            let ok = layer_of(&target).is_some_and(|t| t < own);
            if !ok {
                let rel = file.strip_prefix(&src).unwrap().display();
                violations
                    .entry(module.clone())
                    .or_default()
                    .push(format!("{rel} imports crate::{target}"));
            }
        }
        if module != "platform"
            && text.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains("worker::") && !code.contains("cloudflare_worker")
            })
        {
            let rel = file.strip_prefix(&src).unwrap().display();
            violations
                .entry(module.clone())
                .or_default()
                .push(format!("{rel} names the Workers runtime"));
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{violations:#?}");
}

#[test]
fn the_check_sees_what_it_must() {
    // The scanner itself: grouped imports, paths in expressions, and what is not a crate path.
    let refs = crate_refs("use crate::{gateway::Services, store};\nlet x = crate::admin::f(); // crate::platform");
    assert_eq!(refs, ["gateway", "store", "admin"]);
    assert!(crate_refs("$crate::x; my_crate::y").is_empty());
    assert!(layer_of("policy") < layer_of("gateway"));
    assert_eq!(layer_of("nonexistent"), None);
}
