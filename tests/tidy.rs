//! Tidy: the rules ARCHITECTURE.md states as architecture invariants, checked
//! on the source tree by plain tests (rust-analyzer's way: nothing to install,
//! `cargo test` runs them). Each test enforces one rule and names it when it
//! fails, with the file and line that break it. Only std: manifests, sources
//! and ARCHITECTURE.md are read as text.
//!
//! - `dependencies_are_allow_listed`: every dependency of every workspace
//!   member is on that member's allow-list below, so a new one is added here,
//!   deliberately.
//! - `crates_are_layered`: only the `anx` binary (and the unshipped
//!   `anx-tools`) depends on the shell crates (clap, tokio, reqwest, sled,
//!   anyhow, tracing-subscriber); the journal
//!   depends on no other anx crate, projections on the journal only, replays
//!   on the journal and projections.
//! - `pure_code_has_no_io_clock_randomness_or_hash_maps`: the projections and
//!   the journal's pure parts (`event.rs`, `format.rs`, `codec.rs`).
//! - `libraries_never_print`: the journal, projections and replays crates.
//! - `core_functions_fit_on_a_screen`: no function in the journal,
//!   projections or replays crates longer than `FUNCTION_LINES_MAX` lines.
//! - `every_source_file_opens_with_module_docs`.
//! - `code_map_names_every_source_file`: ARCHITECTURE.md's code map, each
//!   crate's section, names each of its source files and its test directory,
//!   and names no file that does not exist.
//! - `members_use_the_workspace_lints`.
//! - `every_tidy_rule_is_an_architecture_invariant`: ARCHITECTURE.md names
//!   each of these tests.

use std::fs;
use std::path::Path;

// ---------------------------------------------------------------------------
// The rules' data: what each crate may use.

/// What one workspace member may depend on, per manifest section. A
/// dependency missing here fails `dependencies_are_allow_listed`: adding one
/// is a decision, made by adding it here.
struct AllowList {
    /// The member as `[workspace] members` spells it.
    member: &'static str,
    dependencies: &'static [&'static str],
    dev_dependencies: &'static [&'static str],
    build_dependencies: &'static [&'static str],
}

const ALLOW_LISTS: &[AllowList] = &[
    // anx-journal: the format and the writer. Bytes, hashes, decimals, errors.
    AllowList {
        member: "journal",
        dependencies: &[
            "bincode",
            "blake3",
            "compact_str",
            "rust_decimal",
            "serde",
            "thiserror",
        ],
        dev_dependencies: &["insta", "proptest", "serde_json", "tempfile"],
        build_dependencies: &[],
    },
    // anx-projections: pure folds and the engine (TOML configuration, JSON
    // order payloads, the state hash).
    AllowList {
        member: "projections",
        dependencies: &[
            "anx-journal",
            "bincode",
            "blake3",
            "rust_decimal",
            "serde",
            "serde_json",
            "thiserror",
            "toml",
        ],
        dev_dependencies: &["insta", "proptest", "tempfile"],
        build_dependencies: &[],
    },
    // anx-replays: candle files (gzip), the simulated exchange, the runner.
    AllowList {
        member: "replays",
        dependencies: &[
            "anx-journal",
            "anx-projections",
            "blake3",
            "flate2",
            "rust_decimal",
            "thiserror",
        ],
        dev_dependencies: &["insta", "tempfile"],
        build_dependencies: &[],
    },
    // anx-tools: benchmarks and the fake Coinbase exchange (never shipped):
    // an HTTP server (axum on tokio, clap for its flags) that verifies CDP
    // JWTs (p256, ed25519-dalek, base64) and reads the candle cache (flate2).
    AllowList {
        member: "tools",
        dependencies: &[
            "anx-journal",
            "anx-projections",
            "anx-replays",
            "axum",
            "base64",
            "blake3",
            "chrono",
            "clap",
            "ed25519-dalek",
            "flate2",
            "mimalloc",
            "p256",
            "rust_decimal",
            "serde",
            "serde_json",
            "tempfile",
            "tokio",
        ],
        dev_dependencies: &["reqwest"],
        build_dependencies: &[],
    },
    // anx: the binary, the imperative shell. The only one with the shell
    // crates. The live broker signs a JWT per request with the account's CDP
    // key (p256 or ed25519-dalek, base64, a getrandom nonce) and hashes each
    // raw answer for its receipt (blake3). `anx journal export --format
    // parquet` writes Parquet (parquet's Arrow writer, on the arrow-* crates).
    // A trader's `--listen` serves HTTP with hyper (hyper-util's tokio glue,
    // http-body-util and bytes for a response body), and reads its
    // operations settings (toml).
    AllowList {
        member: ".",
        dependencies: &[
            "anx-journal",
            "anx-projections",
            "anx-replays",
            "anyhow",
            "arrow-array",
            "arrow-buffer",
            "arrow-schema",
            "base64",
            "bincode",
            "blake3",
            "bytes",
            "chrono",
            "clap",
            "ed25519-dalek",
            "getrandom",
            "http-body-util",
            "hyper",
            "hyper-util",
            "mimalloc",
            "p256",
            "parquet",
            "reqwest",
            "rust_decimal",
            "serde",
            "serde_json",
            "sled",
            "thiserror",
            "tokio",
            "toml",
            "tracing",
            "tracing-subscriber",
        ],
        dev_dependencies: &["anx-journal", "insta", "serde_json", "tempfile"],
        build_dependencies: &[],
    },
];

/// Crates only the shell members (`SHELL_MEMBERS`) may depend on, in any section.
const SHELL_ONLY: &[&str] = &[
    "clap",
    "tokio",
    "reqwest",
    "sled",
    "anyhow",
    "tracing-subscriber",
];

/// The members that may use the shell crates: the `anx` binary, and
/// `anx-tools` (never shipped; the fake Coinbase exchange is a server).
const SHELL_MEMBERS: &[&str] = &[".", "tools"];

/// The anx crates each member may depend on, in any section.
const LAYERS: &[(&str, &[&str])] = &[
    ("journal", &[]),
    ("projections", &["anx-journal"]),
    ("replays", &["anx-journal", "anx-projections"]),
    ("tools", &["anx-journal", "anx-projections", "anx-replays"]),
    (".", &["anx-journal", "anx-projections", "anx-replays"]),
];

/// The pure core: no I/O, no clock, no randomness, no hash maps (whose
/// iteration order could reach an output). Every `.rs` file under these
/// directories, and these files.
const PURE_DIRS: &[&str] = &["projections/src"];
const PURE_FILES: &[&str] = &[
    "journal/src/event.rs",
    "journal/src/format.rs",
    "journal/src/codec.rs",
];
/// `std::<module>` paths the pure core never names.
const IMPURE_STD_MODULES: &[&str] = &["fs", "time", "env", "net", "process"];
/// Names the pure core never uses.
const IMPURE_NAMES: &[&str] = &[
    "SystemTime",
    "Instant",
    "HashMap",
    "HashSet",
    "RandomState",
    "rand",
    "thread_rng",
    "getrandom",
];
/// Uses of an impure name the pure core is allowed: (file, name), each with
/// a comment saying why. None today. (`#[cfg(test)] mod` blocks are not
/// checked: a unit test may read a file – `event.rs`'s reads FORMAT.md.)
const PURE_EXCEPTIONS: &[(&str, &str)] = &[];

/// Library crates: they return typed errors and never print.
const LIBRARY_DIRS: &[&str] = &["journal/src", "projections/src", "replays/src"];
/// Macros that print (or, for `dbg`, print and are left behind).
const PRINTING_MACROS: &[&str] = &["print", "println", "eprint", "eprintln", "dbg"];
/// Handles a library could print through.
const PRINTING_NAMES: &[&str] = &["stdout", "stderr"];

/// The longest a function of the core crates (`LIBRARY_DIRS`) may be, in
/// lines from its `fn` to its closing brace: TigerBeetle's limit, so that a
/// function fits on a screen and a reader holds all of it at once.
const FUNCTION_LINES_MAX: usize = 70;

/// Source directories outside the workspace members' `src/` that the code
/// map covers: the fuzz workspace's, under the `tools/` section.
const EXTRA_SOURCE_DIRS: &[(&str, &str)] = &[
    ("tools/fuzz/src", "tools/"),
    ("tools/fuzz/fuzz_targets", "tools/"),
];

// ---------------------------------------------------------------------------
// The rules.

#[test]
fn dependencies_are_allow_listed() {
    let rule =
        "each crate depends only on what its allow-list (ALLOW_LISTS in tests/tidy.rs) names";
    let members = workspace_members();
    let mut violations = Vec::new();
    for member in &members {
        let Some(allowed) = ALLOW_LISTS.iter().find(|list| list.member == member) else {
            violations.push(format!(
                "Cargo.toml: workspace member `{member}` has no allow-list in tests/tidy.rs"
            ));
            continue;
        };
        let manifest = manifest_of(member);
        for dep in dependencies(&read(&manifest)) {
            let list = match dep.section {
                Section::Normal => allowed.dependencies,
                Section::Dev => allowed.dev_dependencies,
                Section::Build => allowed.build_dependencies,
            };
            if !list.contains(&dep.name.as_str()) {
                violations.push(format!(
                    "{manifest}:{}: `{}` in [{}] is not on `{member}`'s allow-list",
                    dep.line,
                    dep.name,
                    dep.section.name()
                ));
            }
        }
    }
    for list in ALLOW_LISTS {
        if !members.iter().any(|member| member == list.member) {
            violations.push(format!(
                "tests/tidy.rs: allow-list for `{}`, which is not a workspace member",
                list.member
            ));
        }
    }
    report(rule, violations);
}

#[test]
fn crates_are_layered() {
    let rule = "only the anx binary (and the unshipped anx-tools) depends on clap, tokio, \
                reqwest, sled, anyhow and tracing-subscriber; the journal depends on no anx crate, projections on \
                anx-journal only, replays on anx-journal and anx-projections";
    let mut violations = Vec::new();
    for member in workspace_members() {
        let manifest = manifest_of(&member);
        let Some((_, anx_allowed)) = LAYERS.iter().find(|(name, _)| *name == member) else {
            violations.push(format!(
                "Cargo.toml: workspace member `{member}` has no layer in tests/tidy.rs (LAYERS)"
            ));
            continue;
        };
        for dep in dependencies(&read(&manifest)) {
            if SHELL_ONLY.contains(&dep.name.as_str()) && !SHELL_MEMBERS.contains(&member.as_str())
            {
                violations.push(format!(
                    "{manifest}:{}: `{}` is for the anx binary only",
                    dep.line, dep.name
                ));
            }
            if dep.name.starts_with("anx") && !anx_allowed.contains(&dep.name.as_str()) {
                violations.push(format!(
                    "{manifest}:{}: `{member}` may not depend on `{}`",
                    dep.line, dep.name
                ));
            }
        }
    }
    report(rule, violations);
}

#[test]
fn pure_code_has_no_io_clock_randomness_or_hash_maps() {
    let rule = "projections, the engine and the journal's event.rs, format.rs and codec.rs \
                never do I/O, never read a clock, never use randomness and never use hash \
                maps or sets (no std::fs, std::time, std::env, std::net, std::process, \
                SystemTime, Instant, rand, HashMap, HashSet)";
    let mut files: Vec<String> = PURE_DIRS.iter().flat_map(|dir| rust_files(dir)).collect();
    files.extend(PURE_FILES.iter().map(|file| file.to_string()));
    assert!(files.len() > PURE_FILES.len(), "no pure files found");
    let mut violations = Vec::new();
    for file in &files {
        let tokens = outside_test_modules(tokens(&read(file)));
        let mut found = Vec::new();
        for (at, token) in tokens.iter().enumerate() {
            if IMPURE_NAMES.contains(&token.text.as_str()) {
                found.push((token.line, token.text.clone()));
            }
            if token.text == "std" && tokens.get(at + 1).is_some_and(|t| t.text == "::") {
                for (line, module) in std_path_modules(&tokens[at + 2..]) {
                    if IMPURE_STD_MODULES.contains(&module.as_str()) {
                        found.push((line, format!("std::{module}")));
                    }
                }
            }
        }
        for (line, name) in found {
            let bare = name.trim_start_matches("std::");
            let excepted = PURE_EXCEPTIONS
                .iter()
                .any(|&(f, n)| f == file.as_str() && (n == name || n == bare));
            if !excepted {
                violations.push(format!("{file}:{line}: uses `{name}`"));
            }
        }
    }
    report(rule, violations);
}

#[test]
fn libraries_never_print() {
    let rule = "library crates (journal, projections, replays) never print: no print!, \
                println!, eprint!, eprintln!, the dbg macro, stdout or stderr";
    let mut violations = Vec::new();
    for file in LIBRARY_DIRS.iter().flat_map(|dir| rust_files(dir)) {
        let tokens = tokens(&read(&file));
        for (at, token) in tokens.iter().enumerate() {
            let is_macro = tokens.get(at + 1).is_some_and(|t| t.text == "!");
            if (is_macro && PRINTING_MACROS.contains(&token.text.as_str()))
                || PRINTING_NAMES.contains(&token.text.as_str())
            {
                violations.push(format!("{file}:{}: uses `{}`", token.line, token.text));
            }
        }
    }
    report(rule, violations);
}

#[test]
fn core_functions_fit_on_a_screen() {
    let rule = format!(
        "functions in the journal, projections and replays crates are at most \
         {FUNCTION_LINES_MAX} lines, `fn` to closing brace (split the long ones)"
    );
    let mut violations = Vec::new();
    for file in LIBRARY_DIRS.iter().flat_map(|dir| rust_files(dir)) {
        let text = read(&file);
        for (name, line, lines) in function_lengths(&text) {
            if lines > FUNCTION_LINES_MAX {
                violations.push(format!("{file}:{line}: `{name}` is {lines} lines"));
            }
        }
    }
    report(&rule, violations);
}

#[test]
fn every_source_file_opens_with_module_docs() {
    let rule = "every .rs file opens with module docs: its first non-empty line starts with //!";
    let files = rust_files("");
    assert!(files.len() > 50, "only {} .rs files found", files.len());
    let mut violations = Vec::new();
    for file in files {
        let text = read(&file);
        let first = text
            .lines()
            .enumerate()
            .find(|(_, line)| !line.trim().is_empty());
        match first {
            Some((_, line)) if line.trim_start().starts_with("//!") => {}
            Some((index, line)) => violations.push(format!(
                "{file}:{}: starts with `{}`",
                index + 1,
                line.trim()
            )),
            None => violations.push(format!("{file}:1: is empty")),
        }
    }
    report(rule, violations);
}

#[test]
fn code_map_names_every_source_file() {
    let rule = "ARCHITECTURE.md's code map names every source file in its crate's section \
                (a binary by its name, a mod.rs by its directory), names each crate's test \
                directory, and names no .rs file that does not exist";
    let architecture = read("ARCHITECTURE.md");
    let sections = code_map_sections(&architecture);
    let mut roots: Vec<(String, String)> = Vec::new();
    let mut test_dirs: Vec<(String, String)> = Vec::new();
    for member in workspace_members() {
        let (src, section, tests, tests_section) = if member == "." {
            (
                "src".into(),
                "src/".into(),
                "tests/".into(),
                "tests/".into(),
            )
        } else {
            let section = format!("{member}/");
            (
                format!("{member}/src"),
                section.clone(),
                format!("{member}/tests/"),
                section,
            )
        };
        roots.push((src, section));
        if root().join(&tests).is_dir() {
            test_dirs.push((tests, tests_section));
        }
    }
    roots.extend(
        EXTRA_SOURCE_DIRS
            .iter()
            .map(|(dir, section)| (dir.to_string(), section.to_string())),
    );
    let mut violations = Vec::new();
    let section_text = |key: &str, violations: &mut Vec<String>| -> Option<String> {
        let found = sections.iter().find(|(k, _, _)| k == key);
        if found.is_none() {
            violations.push(format!(
                "ARCHITECTURE.md: the code map has no section `### \\`{key}\\``"
            ));
        }
        found.map(|(_, _, text)| text.clone())
    };
    for (dir, key) in &roots {
        let files = rust_files(dir);
        assert!(!files.is_empty(), "no .rs files under {dir}");
        let Some(text) = section_text(key, &mut violations) else {
            continue;
        };
        for file in files {
            let path = Path::new(&file);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let parent = path.parent().unwrap();
            let parent_name = parent.file_name().unwrap().to_string_lossy().into_owned();
            let (named, wanted) = if name == "mod.rs" {
                let dir = format!("{parent_name}/");
                (names(&text, &dir), format!("`{dir}`"))
            } else if parent_name == "bin" {
                (
                    names(&text, &name) || names(&text, &stem),
                    format!("`{stem}` or `{name}`"),
                )
            } else {
                (names(&text, &name), format!("`{name}`"))
            };
            if !named {
                violations.push(format!(
                    "ARCHITECTURE.md: section `{key}` does not name {wanted} ({file}:1)"
                ));
            }
        }
    }
    for (dir, key) in &test_dirs {
        if let Some(text) = section_text(key, &mut violations) {
            if !names(&text, dir) {
                violations.push(format!(
                    "ARCHITECTURE.md: section `{key}` does not name the test directory `{dir}`"
                ));
            }
        }
    }
    // The other way round: every file the code map names exists.
    let existing: Vec<String> = rust_files("")
        .iter()
        .map(|file| file.rsplit('/').next().unwrap().to_string())
        .collect();
    for (line, name) in backticked_rs_names(&architecture) {
        if !existing.contains(&name) {
            violations.push(format!(
                "ARCHITECTURE.md:{line}: names `{name}`, which no .rs file is called"
            ));
        }
    }
    report(rule, violations);
}

#[test]
fn members_use_the_workspace_lints() {
    let rule = "the workspace forbids unsafe code and denies the dbg and todo macros \
                ([workspace.lints] in Cargo.toml), and every member uses those lints \
                ([lints] workspace = true)";
    let mut violations = Vec::new();
    let root_manifest = read("Cargo.toml");
    for (header, key, value) in [
        ("workspace.lints.rust", "unsafe_code", "\"forbid\""),
        ("workspace.lints.clippy", "dbg_macro", "\"deny\""),
        ("workspace.lints.clippy", "todo", "\"deny\""),
    ] {
        let entry = section_entries(&root_manifest, header)
            .into_iter()
            .find(|(_, k, _)| k == key);
        if entry.as_ref().is_none_or(|(_, _, v)| v != value) {
            violations.push(format!(
                "Cargo.toml: [{header}] must hold `{key} = {value}`"
            ));
        }
    }
    for member in workspace_members() {
        let manifest = manifest_of(&member);
        let lints = section_entries(&read(&manifest), "lints");
        if !lints
            .iter()
            .any(|(_, key, value)| key == "workspace" && value == "true")
        {
            violations.push(format!(
                "{manifest}: has no `[lints]` section with `workspace = true`"
            ));
        }
    }
    report(rule, violations);
}

#[test]
fn every_tidy_rule_is_an_architecture_invariant() {
    let rule = "ARCHITECTURE.md names every tidy test as the check of an architecture invariant";
    let architecture = read("ARCHITECTURE.md");
    let source = read("tests/tidy.rs");
    let mut violations = Vec::new();
    let mut lines = source.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        // Top-level tests only: the tokenizer's own tests are not rules.
        if line != "#[test]" {
            continue;
        }
        let Some((index, signature)) = lines.next() else {
            break;
        };
        let name = signature
            .trim()
            .trim_start_matches("fn ")
            .split('(')
            .next()
            .unwrap_or_default();
        if !names(&architecture, &format!("tidy::{name}")) {
            violations.push(format!(
                "tests/tidy.rs:{}: `{name}` is not named in ARCHITECTURE.md (as `tidy::{name}`)",
                index + 1
            ));
        }
    }
    report(rule, violations);
}

// ---------------------------------------------------------------------------
// Reading the tree.

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file relative to the repository root, as text.
fn read(file: &str) -> String {
    fs::read_to_string(root().join(file))
        .unwrap_or_else(|e| panic!("tidy: cannot read {file}: {e}"))
}

/// Fails naming the rule and listing every violation.
fn report(rule: &str, violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "\nrule broken: {rule}\n  {}\n",
        violations.join("\n  ")
    );
}

/// Directories the walk never enters: build output, the fuzzers' data, run
/// output and candle caches (relative to the repository root).
const SKIPPED_DIRS: &[&str] = &[
    "anx-data",
    "data",
    "tools/fuzz/corpus",
    "tools/fuzz/artifacts",
    "tools/fuzz/coverage",
];

/// Every `.rs` file under `dir` ("" for the whole repository), as paths
/// relative to the repository root, sorted. `target/` and hidden
/// directories are skipped anywhere, and so is `SKIPPED_DIRS`.
fn rust_files(dir: &str) -> Vec<String> {
    fn walk(relative: &str, out: &mut Vec<String>) {
        let path = root().join(relative);
        let entries =
            fs::read_dir(&path).unwrap_or_else(|e| panic!("tidy: cannot list {relative}: {e}"));
        for entry in entries {
            let entry = entry.expect("tidy: directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if relative.is_empty() {
                name.clone()
            } else {
                format!("{relative}/{name}")
            };
            let file_type = entry.file_type().expect("tidy: file type");
            if file_type.is_dir() {
                if name.starts_with('.')
                    || name == "target"
                    || SKIPPED_DIRS.contains(&child.as_str())
                {
                    continue;
                }
                walk(&child, out);
            } else if file_type.is_file() && name.ends_with(".rs") {
                out.push(child);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Manifests (simple line parsing: enough for the manifests of this workspace).

/// The workspace members, as `[workspace] members` lists them.
fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest
        .find("members = [")
        .expect("Cargo.toml: [workspace] members");
    let list = &manifest[start + "members = [".len()..];
    let list = &list[..list.find(']').expect("Cargo.toml: members list ends")];
    let members: Vec<String> = list
        .split(',')
        .map(|item| item.trim().trim_matches('"').to_string())
        .filter(|item| !item.is_empty())
        .collect();
    assert!(members.len() >= 5, "members: {members:?}");
    members
}

fn manifest_of(member: &str) -> String {
    if member == "." {
        "Cargo.toml".into()
    } else {
        format!("{member}/Cargo.toml")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Normal,
    Dev,
    Build,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Normal => "dependencies",
            Section::Dev => "dev-dependencies",
            Section::Build => "build-dependencies",
        }
    }

    /// The dependency section a table header opens, and the dependency a
    /// `[dependencies.NAME]` header names. `[workspace.dependencies]` is
    /// not a package's.
    fn of_header(header: &str) -> Option<(Section, Option<String>)> {
        let header = header.strip_prefix("target.").map_or(header, |rest| {
            // `target.'cfg(…)'.dependencies` or `target.TRIPLE.dependencies`:
            // drop the target part.
            match rest.rfind(['\'', '"']) {
                Some(at) => rest[at + 1..].trim_start_matches('.'),
                None => rest.split_once('.').map_or(rest, |(_, after)| after),
            }
        });
        for section in [Section::Dev, Section::Build, Section::Normal] {
            let name = section.name();
            if header == name {
                return Some((section, None));
            }
            if let Some(dep) = header.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
                return Some((section, Some(dep.trim_matches('"').to_string())));
            }
        }
        None
    }
}

struct Dependency {
    name: String,
    section: Section,
    /// 1-based line in the manifest.
    line: usize,
}

/// A manifest line without its comment.
fn strip_toml_comment(line: &str) -> &str {
    let mut in_string = false;
    for (at, c) in line.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..at],
            _ => {}
        }
    }
    line
}

/// Brackets and braces opened minus closed, outside strings.
fn nesting(text: &str) -> i32 {
    let mut in_string = false;
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '"' => in_string = !in_string,
            '[' | '{' if !in_string => depth += 1,
            ']' | '}' if !in_string => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Every dependency a manifest declares, in any dependency section.
fn dependencies(manifest: &str) -> Vec<Dependency> {
    let mut deps = Vec::new();
    let mut section: Option<Section> = None;
    // Inside `[dependencies.NAME]`: its keys are fields, not dependencies.
    let mut in_dep_table = false;
    // Open brackets of a value that spans lines.
    let mut depth = 0;
    for (index, raw) in manifest.lines().enumerate() {
        let line = strip_toml_comment(raw).trim();
        if depth > 0 {
            depth += nesting(line);
            continue;
        }
        if line.starts_with('[') {
            let header = line.trim_matches(['[', ']']).trim();
            section = None;
            in_dep_table = false;
            if let Some((kind, named)) = Section::of_header(header) {
                section = Some(kind);
                if let Some(name) = named {
                    in_dep_table = true;
                    deps.push(Dependency {
                        name,
                        section: kind,
                        line: index + 1,
                    });
                }
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        depth += nesting(value);
        if let (Some(kind), false) = (section, in_dep_table) {
            let name = key.trim().split('.').next().unwrap_or_default();
            deps.push(Dependency {
                name: name.trim().trim_matches('"').to_string(),
                section: kind,
                line: index + 1,
            });
        }
    }
    deps
}

/// The `key = value` lines of the table `[header]`: (1-based line, key, value).
fn section_entries(manifest: &str, header: &str) -> Vec<(usize, String, String)> {
    let mut inside = false;
    let mut entries = Vec::new();
    for (index, raw) in manifest.lines().enumerate() {
        let line = strip_toml_comment(raw).trim();
        if line.starts_with('[') {
            inside = line.trim_matches(['[', ']']).trim() == header;
            continue;
        }
        if let (true, Some((key, value))) = (inside, line.split_once('=')) {
            entries.push((index + 1, key.trim().to_string(), value.trim().to_string()));
        }
    }
    entries
}

// ---------------------------------------------------------------------------
// Rust sources: a tokenizer just good enough to see names in code, not in
// comments or string literals.

struct Token {
    text: String,
    /// 1-based.
    line: usize,
}

/// Identifiers and the punctuation `::`, `{`, `}`, `,`, `!` of Rust source,
/// with their lines. Comments and the contents of string and character
/// literals are skipped.
fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips a string literal's body from `i` (after its opening quote) to
    // after its closing quote, counting lines; `hashes` for raw strings.
    let skip_string = |mut i: usize, hashes: Option<usize>, line: &mut usize| -> usize {
        while i < chars.len() {
            match chars[i] {
                '\n' => *line += 1,
                '\\' if hashes.is_none() => {
                    if at(i + 1) == '\n' {
                        *line += 1;
                    }
                    i += 1;
                }
                '"' => {
                    let n = hashes.unwrap_or(0);
                    if (1..=n).all(|k| at(i + k) == '#') {
                        return i + 1 + n;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '/' if at(i + 1) == '/' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if at(i + 1) == '*' => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if chars[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        i += 1;
                    }
                }
            }
            '"' => i = skip_string(i + 1, None, &mut line),
            '\'' => {
                // A character literal, or a lifetime (left to the identifier).
                if at(i + 1) == '\\' {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if at(i + 2) == '\'' {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                // A raw or byte string starts like an identifier.
                let prefix_end = match (c, at(i + 1)) {
                    ('b', 'r') => Some(i + 2),
                    ('r', _) => Some(i + 1),
                    ('b', '"') => Some(i + 1),
                    _ => None,
                };
                if let Some(mut j) = prefix_end {
                    let mut hashes = 0;
                    while at(j) == '#' {
                        hashes += 1;
                        j += 1;
                    }
                    if at(j) == '"' {
                        let raw = c == 'r' || at(i + 1) == 'r';
                        i = skip_string(j + 1, raw.then_some(hashes), &mut line);
                        continue;
                    }
                }
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                out.push(Token {
                    text: chars[start..i].iter().collect(),
                    line,
                });
            }
            ':' if at(i + 1) == ':' => {
                out.push(Token {
                    text: "::".into(),
                    line,
                });
                i += 2;
            }
            '{' | '}' | ',' | '!' | ';' => {
                out.push(Token {
                    text: c.to_string(),
                    line,
                });
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Every function with a body in `source`: its name, the line of its `fn`
/// and its length in lines through its closing brace. A `fn` type
/// (`fn(u32) -> u32`) is told from a definition by the text after `fn`.
fn function_lengths(source: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let tokens = tokens(source);
    let mut out = Vec::new();
    for (at, token) in tokens.iter().enumerate() {
        let Some(name) = tokens.get(at + 1) else {
            break;
        };
        let line_text = lines.get(token.line - 1).copied().unwrap_or_default();
        if token.text != "fn" || !line_text.contains(&format!("fn {}", name.text)) {
            continue;
        }
        // The body opens at the first `{` unless a `;` ends the item first.
        let Some(open) =
            (at + 2..tokens.len()).find(|&i| matches!(tokens[i].text.as_str(), "{" | ";"))
        else {
            break;
        };
        if tokens[open].text == ";" {
            continue;
        }
        let mut depth = 0;
        for close in &tokens[open..] {
            depth += match close.text.as_str() {
                "{" => 1,
                "}" => -1,
                _ => 0,
            };
            if depth == 0 {
                out.push((name.text.clone(), token.line, close.line - token.line + 1));
                break;
            }
        }
    }
    out
}

/// `tokens` without the `#[cfg(test)] mod NAME { … }` blocks in them.
fn outside_test_modules(tokens: Vec<Token>) -> Vec<Token> {
    let mut out = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    let mut window: Vec<String> = Vec::new();
    while let Some(token) = tokens.next() {
        window.push(token.text.clone());
        out.push(token);
        // `#[cfg(test)] mod NAME {` tokenizes as `cfg test mod NAME {`.
        let n = window.len();
        if n >= 5
            && window[n - 5] == "cfg"
            && window[n - 4] == "test"
            && window[n - 3] == "mod"
            && window[n - 1] == "{"
        {
            out.truncate(out.len() - 5);
            let mut depth = 1;
            for token in tokens.by_ref() {
                match token.text.as_str() {
                    "{" => depth += 1,
                    "}" => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
            window.clear();
        }
    }
    out
}

/// The first module of a path after `std::`: `fs` of `std::fs::File`, or
/// each module of a group, `fs` and `io` of `std::{fs, io::Read}`.
fn std_path_modules(after: &[Token]) -> Vec<(usize, String)> {
    let mut modules = Vec::new();
    let Some(first) = after.first() else {
        return modules;
    };
    if first.text != "{" {
        modules.push((first.line, first.text.clone()));
        return modules;
    }
    let mut depth = 0;
    let mut expect_item = true;
    for token in after {
        match token.text.as_str() {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => expect_item = true,
            text if depth == 1 && expect_item => {
                modules.push((token.line, text.to_string()));
                expect_item = false;
            }
            _ => {}
        }
    }
    modules
}

// ---------------------------------------------------------------------------
// ARCHITECTURE.md.

/// The code map's sections: (key, heading line, text including the heading).
/// The key is the first backticked word of a `### ` heading (`journal/`).
fn code_map_sections(architecture: &str) -> Vec<(String, usize, String)> {
    let mut sections: Vec<(String, usize, String)> = Vec::new();
    let mut current: Option<usize> = None;
    for (index, line) in architecture.lines().enumerate() {
        if line.starts_with("## ") || line.starts_with("### ") {
            current = None;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            let key = heading.split('`').nth(1).unwrap_or(heading).to_string();
            sections.push((key, index + 1, String::new()));
            current = Some(sections.len() - 1);
        }
        if let Some(at) = current {
            sections[at].2.push_str(line);
            sections[at].2.push('\n');
        }
    }
    sections
}

/// Whether `text` names `name`: it occurs with no name character (letter,
/// digit, `_`, `-`) right before or after it, so `bench-replay` is not named
/// by `bench-replay-run`, nor `head.rs` by `ahead.rs`.
fn names(text: &str, name: &str) -> bool {
    let is_name_char = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The `.rs` file names ARCHITECTURE.md puts in backticks (the last path
/// component of `src/checks.rs`), with their lines.
fn backticked_rs_names(architecture: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in architecture.lines().enumerate() {
        for (n, part) in line.split('`').enumerate() {
            let named_file = part.len() > ".rs".len() && !part.ends_with("/.rs");
            if n % 2 == 1 && part.ends_with(".rs") && named_file && !part.contains(' ') {
                found.push((index + 1, part.rsplit('/').next().unwrap().to_string()));
            }
        }
    }
    found
}

/// The tidy machinery's own checks (not rules: ARCHITECTURE.md need not
/// name them).
mod machinery {
    use super::*;

    fn texts(source: &str) -> Vec<String> {
        tokens(source).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn the_tokenizer_sees_names_in_code_only() {
        let source = "use std::{fs, io::Read};\n// HashMap in a comment\n/* Instant */\n\
                      let s = \"std::time\"; let r = r#\"HashSet\"#; let c = '\"';\n\
                      let t = std::time::Duration::ZERO; let l: &'static str = \"\";\n\
                      #[cfg(test)]\nmod tests { use std::env; }\nfn after() {}";
        let all = tokens(source);
        assert_eq!(all[0].text, "use");
        let names = texts(source);
        for hidden in ["HashMap", "Instant", "HashSet"] {
            assert!(!names.contains(&hidden.to_string()), "{hidden}: {names:?}");
        }
        let std_at = names.iter().position(|t| t == "std").unwrap();
        let group: Vec<String> = std_path_modules(&all[std_at + 2..])
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(group, ["fs", "io"]);
        let time = all.iter().find(|t| t.text == "time").unwrap();
        assert_eq!(
            time.line, 5,
            "lines are counted through literals and comments"
        );
        let outside: Vec<String> = outside_test_modules(all)
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert!(!outside.contains(&"env".to_string()), "{outside:?}");
        assert!(outside.contains(&"after".to_string()), "{outside:?}");
    }

    #[test]
    fn function_lengths_count_bodies_only() {
        let source = "trait T {\n    fn declared(&self);\n}\n\
                      fn pointer(f: fn(u32) -> u32) -> u32 {\n    let s = \"}\";\n    f(1)\n}\n\
                      fn nested() {\n    if true {\n        {}\n    }\n}\n";
        let found = function_lengths(source);
        assert_eq!(
            found,
            [("pointer".to_string(), 4, 4), ("nested".to_string(), 8, 5)]
        );
    }

    #[test]
    fn dependencies_are_read_from_every_dependency_table() {
        let manifest = "[workspace.dependencies]\nserde = \"1\"\n\
                        [dependencies]\nfoo.workspace = true\nbar = { version = \"1\",\n  features = [\n \"x\",\n] }\n\
                        [dev-dependencies]\nbaz = \"1\" # comment\n\
                        [target.'cfg(unix)'.dependencies]\nqux = \"1\"\n\
                        [build-dependencies.quux]\nversion = \"1\"\n[[bin]]\nname = \"x\"\n";
        let found: Vec<(String, Section, usize)> = dependencies(manifest)
            .into_iter()
            .map(|d| (d.name, d.section, d.line))
            .collect();
        let expected = [
            ("foo", Section::Normal, 4),
            ("bar", Section::Normal, 5),
            ("baz", Section::Dev, 10),
            ("qux", Section::Normal, 12),
            ("quux", Section::Build, 13),
        ];
        let expected: Vec<(String, Section, usize)> = expected
            .iter()
            .map(|(n, s, l)| (n.to_string(), *s, *l))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_name_is_named_only_whole() {
        assert!(names("the `head.rs` file", "head.rs"));
        assert!(names("`src/checks.rs`", "checks.rs"));
        assert!(!names("`ahead.rs`", "head.rs"));
        assert!(!names("`bench-replay-run`", "bench-replay"));
        assert!(names("`bench-replay`, `bench-replay-run`", "bench-replay"));
    }
}
