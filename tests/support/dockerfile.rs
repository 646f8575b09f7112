//! The Dockerfile's final stage, read as instructions: what `tests/packaging.rs` checks against
//! the code and k8s/, and `tests/image.rs` against the image `scripts/image.sh` builds.

use super::repo_root;

/// Instructions of the final stage (after the last FROM) as (INSTRUCTION, rest), continuation
/// lines joined.
pub fn final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile"))
        .unwrap()
        .replace("\\\n", " ");
    let mut stage = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let instr = instr.to_ascii_uppercase();
        if instr == "FROM" {
            stage.clear();
        }
        stage.push((instr, rest.trim().to_string()));
    }
    stage
}

/// The rest of every `name` instruction of `stage`.
pub fn instr(stage: &[(String, String)], name: &str) -> Vec<String> {
    stage
        .iter()
        .filter(|(i, _)| i == name)
        .map(|(_, r)| r.clone())
        .collect()
}

/// `ENV A=1 B=2` lines of a stage as pairs.
pub fn env(stage: &[(String, String)]) -> Vec<(String, String)> {
    instr(stage, "ENV")
        .iter()
        .flat_map(|l| {
            l.split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
