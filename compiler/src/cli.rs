//! The `gatewayc` command line: a thin shell over [`crate::compile`].
//!
//! It lives in the library so that the end-to-end tests can build the same binary.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::emit::{Crate, EmitOptions};
use crate::{Input, Output, compile, keys, lower};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Compile OpenAPI documents annotated with `x-gateway` into an API gateway.
#[derive(Parser, Debug)]
#[command(name = "gatewayc", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Validate specs and report every problem with its location, then what the gateway
    /// will need at start-up (environment variables, files, services); exit 1 on errors.
    Check {
        #[command(flatten)]
        specs: Specs,
        /// Output format: rustc-style text on stderr, or JSON or SARIF 2.1.0 on stdout
        /// (docs/cli.md).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Generate the gateway crate into DIR and compile it; prints the binary's path.
    Build {
        #[command(flatten)]
        specs: Specs,
        #[command(flatten)]
        out: OutArgs,
        /// Only write the crate; do not run cargo.
        #[arg(long)]
        emit_only: bool,
        /// Also write a Dockerfile and Kubernetes manifests for the gateway into this
        /// directory (docs/deploy.md).
        #[arg(long, value_name = "DEPLOY_DIR")]
        deploy: Option<PathBuf>,
    },
    /// Print the compiled route table.
    Routes {
        #[command(flatten)]
        specs: Specs,
        /// Output format: an aligned table, or JSON (docs/cli.md).
        #[arg(long, value_enum, default_value_t = RoutesFormat::Human)]
        format: RoutesFormat,
    },
    /// Build the gateway and start it. Upstreams with no URL answer from the spec's examples.
    Run {
        #[command(flatten)]
        specs: Specs,
        /// Where to generate the crate [default: .gatewayc/<name>].
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Build with optimisations.
        #[arg(long)]
        release: bool,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Make, list and revoke API keys (docs/keys.md).
    Keys {
        #[command(subcommand)]
        command: KeysCmd,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Make a key: prints it alone on stdout. It is stored hashed and never shown again.
    New {
        /// Whom the key is for.
        #[arg(long, value_name = "NAME")]
        consumer: String,
        /// The consumer's plan (`x-gateway.plans`).
        #[arg(long, value_name = "PLAN")]
        plan: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List keys: id, consumer, plan, creation time, status (never keys or hashes).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke the key with this id; exit 1 when there is none.
    Revoke {
        /// The key's id, as `gatewayc keys list` shows it.
        #[arg(value_name = "ID")]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Args, Debug)]
struct StoreArgs {
    /// The key file [default: keys.toml].
    #[arg(long, value_name = "PATH", conflicts_with = "redis")]
    file: Option<PathBuf>,
    /// Keep keys in Redis instead (redis://[user:password@]host[:port][/db]).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

impl StoreArgs {
    fn store(self) -> keys::Store {
        match (self.redis, self.file) {
            (Some(url), _) => keys::Store::Redis(url),
            (None, file) => {
                keys::Store::File(file.unwrap_or_else(|| PathBuf::from(keys::DEFAULT_FILE)))
            }
        }
    }
}

#[derive(Args, Debug)]
struct Specs {
    /// Spec files (YAML or JSON); several files compile into one gateway.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<PathBuf>,
    /// Send every operation that names no upstream to this URL.
    #[arg(long, value_name = "URL")]
    default_upstream: Option<String>,
}

#[derive(Args, Debug)]
struct OutArgs {
    /// Directory to generate the crate into.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Build with optimisations.
    #[arg(long)]
    release: bool,
    /// Path of the gatewayc-runtime crate [default: $GATEWAYC_RUNTIME_PATH, or the one
    /// this gatewayc was built with]; the generated Cargo.toml names it relative to DIR.
    #[arg(long, value_name = "DIR")]
    runtime_path: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Generate a member of an enclosing workspace (no `[workspace]` table); used for
    /// this repository's generated-example/.
    #[arg(long)]
    workspace_member: bool,
}

#[derive(Args, Debug)]
struct TargetArgs {
    /// Cargo's target directory for the build [default: $CARGO_TARGET_DIR, else one cache
    /// shared by every gateway: $XDG_CACHE_HOME/gatewayc/target, ~/.cache/gatewayc/target].
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
}

/// How `check` reports.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Format {
    /// rustc-style diagnostics, a summary and what the gateway will need, on stderr.
    Human,
    /// One JSON object on stdout: `diagnostics`, `operations`, `needs`.
    Json,
    /// A SARIF 2.1.0 log on stdout, for code scanning.
    Sarif,
}

/// How `routes` prints the table.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum RoutesFormat {
    /// Aligned columns.
    Human,
    /// One JSON object on stdout: `gateway`, `routes`.
    Json,
}

/// Parses the command line and runs the command; the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Check { specs, format } => {
            let input = input(&specs, None)?;
            let out = compile(&input);
            let report = check_report(&out, format, &input.base);
            print!("{}", report.stdout);
            eprint!("{}", report.stderr);
            Ok(if out.model.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Routes { specs, format } => {
            let out = compile(&input(&specs, None)?);
            eprint!("{}", out.diagnostics.render_human(&out.sources));
            let Some(model) = out.model else {
                return Ok(ExitCode::FAILURE);
            };
            match format {
                RoutesFormat::Human => print!("{}", crate::routes::table(&model)),
                RoutesFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::routes::json(&model))
                        .context("cannot write the route table as JSON")?
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Build {
            specs,
            out,
            emit_only,
            deploy,
        } => {
            let krate = generate(
                &specs,
                &out.out,
                out.runtime_path.as_deref(),
                out.workspace_member,
                deploy.as_deref(),
            )?;
            let Some(krate) = krate else {
                return Ok(ExitCode::FAILURE);
            };
            if emit_only {
                eprintln!("wrote {} to {}", krate.package, out.out.display());
                return Ok(ExitCode::SUCCESS);
            }
            let target = target_dir(out.target.target_dir, out.workspace_member, &env_var);
            let bin = cargo_build(&out.out, &krate.package, out.release, target.as_deref())?;
            println!("{}", bin.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            specs,
            out,
            release,
            target,
        } => {
            let probe = compile(&input(&specs, None)?);
            let Some(model) = probe.model else {
                eprint!("{}", probe.diagnostics.render_human(&probe.sources));
                return Ok(ExitCode::FAILURE);
            };
            let dir = out.unwrap_or_else(|| Path::new(".gatewayc").join(&model.name));
            let Some(krate) = generate(&specs, &dir, None, false, None)? else {
                return Ok(ExitCode::FAILURE);
            };
            let target = target_dir(target.target_dir, false, &env_var);
            let bin = cargo_build(&dir, &krate.package, release, target.as_deref())?;
            eprintln!("starting {}", bin.display());
            exec(&bin)
        }
        Cmd::Keys { command } => keys_command(command),
    }
}

/// What `check` prints: on stdout (JSON and SARIF) and on stderr (the human report).
#[derive(Debug, Default)]
struct Report {
    stdout: String,
    stderr: String,
}

/// The report of a check in `format`; `base` is the directory paths are shown against.
///
/// When the specs pass, every format also tells what the gateway will need at start-up
/// ([`crate::startup`]): after the summary in the human report, as `needs` in JSON, and in
/// the SARIF run's `properties`.
fn check_report(out: &Output, format: Format, base: &Path) -> Report {
    let needs = out.model.as_ref().map(crate::startup::needs);
    let operations = out.model.as_ref().map(|m| m.operations.len());
    match format {
        Format::Human => {
            let mut stderr = out.diagnostics.render_human(&out.sources);
            if let (Some(ops), Some(needs)) = (operations, &needs) {
                stderr.push_str(&format!("ok: {ops} operations\n"));
                stderr.push_str(&needs.render_human());
            }
            Report {
                stdout: String::new(),
                stderr,
            }
        }
        Format::Json => {
            let report = serde_json::json!({
                "diagnostics": out.diagnostics.to_json(&out.sources),
                "operations": operations,
                "needs": needs,
            });
            Report {
                stdout: format!("{report:#}\n"),
                stderr: String::new(),
            }
        }
        Format::Sarif => {
            let properties = needs.map(|needs| {
                serde_json::json!({
                    "operations": operations,
                    "needs": needs,
                })
            });
            Report {
                stdout: format!(
                    "{}\n",
                    crate::sarif::render(&out.diagnostics, &out.sources, base, properties)
                ),
                stderr: String::new(),
            }
        }
    }
}

fn keys_command(command: KeysCmd) -> Result<ExitCode> {
    match command {
        KeysCmd::New {
            consumer,
            plan,
            store,
        } => {
            let new = keys::create(&store.store(), &consumer, plan.as_deref())?;
            println!("{}", new.key);
            eprintln!(
                "note: key {} for {}; it will not be shown again",
                new.entry.id, new.entry.consumer
            );
        }
        KeysCmd::List { store } => {
            let store = store.store();
            let entries = keys::list(&store)?;
            print!("{}", keys::render_list(&entries));
            if entries.is_empty() {
                eprintln!("no keys in {store}");
            }
        }
        KeysCmd::Revoke { id, store } => match keys::revoke(&store.store(), &id) {
            Ok(r) if r.already => eprintln!(
                "{id} ({}) was already revoked at {}",
                r.entry.consumer,
                r.entry.revoked.as_deref().unwrap_or("?")
            ),
            Ok(r) => eprintln!("revoked {id} ({})", r.entry.consumer),
            Err(e @ (keys::KeysError::UnknownId { .. } | keys::KeysError::NotAnId)) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn input(specs: &Specs, emit: Option<EmitOptions>) -> Result<Input> {
    Ok(Input {
        specs: specs.specs.clone(),
        base: std::env::current_dir().context("cannot read the current directory")?,
        options: lower::Options {
            default_upstream: specs.default_upstream.clone(),
        },
        emit,
    })
}

/// This repository's lock file: the versions the runtime was tested with.
const WORKSPACE_LOCK: &str = include_str!("../../Cargo.lock");

/// The runtime crate: `$GATEWAYC_RUNTIME_PATH`, else the one this gatewayc was built next
/// to (its path is recorded at build time; only gatewayc itself holds it, never the crates
/// it generates).
fn default_runtime() -> PathBuf {
    match std::env::var_os("GATEWAYC_RUNTIME_PATH") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("runtime"),
    }
}

/// Checks, generates and writes the crate, and with `deploy` the deployment files
/// ([`crate::deploy`]) into that directory; `None` when the specs have errors (printed).
///
/// Fails when the runtime cannot be found, a directory cannot be created, a file cannot
/// be written, or a template does not render (a bug in gatewayc).
fn generate(
    specs: &Specs,
    dir: &Path,
    runtime: Option<&Path>,
    member: bool,
    deploy: Option<&Path>,
) -> Result<Option<Crate>> {
    let runtime = runtime.map_or_else(default_runtime, Path::to_path_buf);
    let runtime = std::fs::canonicalize(&runtime).with_context(|| {
        format!(
            "gatewayc-runtime not found at {}; pass --runtime-path or set GATEWAYC_RUNTIME_PATH",
            runtime.display()
        )
    })?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir_abs = std::fs::canonicalize(dir)?;
    let runtime_path = match relative_path(&dir_abs, &runtime) {
        Some(rel) => rel.to_string_lossy().replace('\\', "/"),
        None => {
            eprintln!(
                "warning: {} and {} have no common root, so the generated Cargo.toml names the runtime by its absolute path",
                dir_abs.display(),
                runtime.display()
            );
            runtime.to_string_lossy().into_owned()
        }
    };
    let out: Output = compile(&input(
        specs,
        Some(EmitOptions {
            runtime_path,
            standalone: !member,
        }),
    )?);
    eprint!("{}", out.diagnostics.render_human(&out.sources));
    let (Some(krate), Some(model)) = (out.krate, out.model) else {
        return Ok(None);
    };
    let krate = krate?;
    // A standalone crate starts from the dependency versions gatewayc was tested with.
    let lock = dir.join("Cargo.lock");
    if !member && !lock.exists() {
        std::fs::write(&lock, WORKSPACE_LOCK)
            .with_context(|| format!("cannot write {}", lock.display()))?;
    }
    write_files(dir, &krate.files)?;
    if let Some(deploy) = deploy {
        let files = crate::deploy::render(&model)?;
        write_files(deploy, &files)?;
        eprintln!(
            "wrote {} deployment files to {}; build the image with:\n  docker build -f {} --build-context gatewayc={} -t {} {}",
            files.len(),
            deploy.display(),
            deploy.join("Dockerfile").display(),
            runtime.parent().unwrap_or(&runtime).display(),
            crate::deploy::image(&model),
            dir.display(),
        );
    }
    Ok(Some(krate))
}

/// Writes `files` (relative path → contents) under `dir`, creating directories, and
/// leaves files that already hold those contents alone so that cargo does not rebuild
/// them. Fails on the first directory or file that cannot be written.
fn write_files(dir: &Path, files: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for (path, contents) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if std::fs::read_to_string(&target).ok().as_deref() != Some(contents.as_str()) {
            std::fs::write(&target, contents)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
    }
    Ok(())
}

/// The path that leads from directory `from` to `to`, both absolute and canonical (`..`
/// for each component of `from` past their common ancestor); `None` when they share no
/// root (two drives on Windows).
///
/// The generated `Cargo.toml` names the runtime this way, so it holds no path of the
/// machine, and the crate keeps building when the tree holding both is moved or cloned.
fn relative_path(from: &Path, to: &Path) -> Option<PathBuf> {
    let mut from_rest = from.components().peekable();
    let mut to_rest = to.components().peekable();
    if from_rest.peek() != to_rest.peek() {
        return None;
    }
    while let (Some(a), Some(b)) = (from_rest.peek(), to_rest.peek())
        && a == b
    {
        from_rest.next();
        to_rest.next();
    }
    let mut rel: PathBuf = from_rest.map(|_| Component::ParentDir).collect();
    rel.extend(to_rest);
    if rel.as_os_str().is_empty() {
        rel.push(Component::CurDir);
    }
    Some(rel)
}

/// The environment, as [`target_dir`] reads it.
fn env_var(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Where cargo builds a generated crate: `flag` (`--target-dir`); else `$CARGO_TARGET_DIR`;
/// else, for a member of an enclosing workspace, that workspace's own (`None`: cargo's
/// choice); else one cache shared by every gateway this user builds,
/// `$XDG_CACHE_HOME/gatewayc/target`, `$HOME/.cache/gatewayc/target` or
/// `%LOCALAPPDATA%\gatewayc\target`, so that a new output directory does not build the
/// runtime and its dependencies again. `None` when there is no such place either: then the
/// crate's own `target/`.
fn target_dir(
    flag: Option<PathBuf>,
    member: bool,
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    if flag.is_some() {
        return flag;
    }
    if let Some(dir) = env("CARGO_TARGET_DIR") {
        return Some(dir.into());
    }
    if member {
        return None;
    }
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    let cache = absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .or_else(|| absolute("LOCALAPPDATA"))?;
    Some(cache.join("gatewayc").join("target"))
}

/// Runs `cargo build` on the generated crate in `dir`, in the target directory `target`
/// (cargo's default when `None`), showing cargo's progress, and returns the path of the
/// binary: `dir/target/<profile>/<name>`, where a build of that crate alone would leave it
/// ([`place_binary`]).
fn cargo_build(dir: &Path, package: &str, release: bool, target: Option<&Path>) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The canonical path: the runtime's relative path in Cargo.toml was computed from it.
    let dir =
        std::fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--bin")
        .arg(package);
    if let Some(target) = target {
        cmd.arg("--target-dir").arg(target);
    }
    cmd.arg("--message-format=json-render-diagnostics");
    if release {
        cmd.arg("--release");
    }
    if std::io::stderr().is_terminal() {
        cmd.arg("--color=always");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    eprintln!(
        "compiling {package} (cargo build{}{})",
        if release { " --release" } else { "" },
        target.map_or_else(String::new, |t| format!(
            ", target directory {}",
            t.display()
        ))
    );
    let mut child = cmd
        .spawn()
        .context("cannot run cargo; is it installed and on PATH?")?;
    let mut binary = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if msg["reason"] == "compiler-artifact"
                && let Some(exe) = msg["executable"].as_str()
            {
                binary = Some(PathBuf::from(exe));
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "cargo build failed for the generated crate in {}",
            dir.display()
        );
    }
    let binary = binary.context("cargo reported no executable for the generated crate")?;
    place_binary(&binary, &dir, if release { "release" } else { "debug" })
}

/// Puts the binary cargo built in `built` at `dir/target/<profile>/<its name>`, hard-linked
/// (copied across file systems), and returns that path. In a target directory that several
/// gateways share, a gateway of the same name built from another directory would replace
/// the binary cargo leaves there; the one in `dir` stays this crate's.
fn place_binary(built: &Path, dir: &Path, profile: &str) -> Result<PathBuf> {
    let name = built
        .file_name()
        .context("cargo reported an executable without a file name")?;
    let place = dir.join("target").join(profile);
    let placed = place.join(name);
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(&placed), std::fs::canonicalize(built))
        && a == b
    {
        return Ok(placed);
    }
    std::fs::create_dir_all(&place)
        .with_context(|| format!("cannot create {}", place.display()))?;
    match std::fs::remove_file(&placed) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot replace {}", placed.display()));
        }
        _ => {}
    }
    if std::fs::hard_link(built, &placed).is_err() {
        std::fs::copy(built, &placed)
            .with_context(|| format!("cannot copy {} to {}", built.display(), placed.display()))?;
    }
    Ok(placed)
}

#[cfg(unix)]
fn exec(bin: &Path) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = Command::new(bin).exec();
    Err(err).with_context(|| format!("cannot start {}", bin.display()))
}

#[cfg(not(unix))]
fn exec(bin: &Path) -> Result<ExitCode> {
    let status = Command::new(bin).status()?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A spec that checks clean and needs a variable, a key file and a JWKS; and the
    /// directory it is in.
    fn passing() -> (tempfile::TempDir, Output) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = dir.path().join("api.yaml");
        std::fs::write(
            &spec,
            r#"openapi: 3.1.0
info: { title: Pets, version: "1" }
x-gateway:
  upstreams: { pets: { url: "${PETS_URL}" } }
  defaults: { upstream: pets }
  consumers: { store: file, path: keys.toml }
security:
  - key: []
  - idp: []
paths:
  /pets:
    get: { operationId: listPets, responses: { "200": { description: ok } } }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }
    idp:
      type: http
      scheme: bearer
      x-gateway: { jwt: { jwks_url: "${JWKS_URL:-https://id.example.test/jwks}" } }
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let out = compile(&Input {
            specs: vec![spec],
            base: dir.path().to_path_buf(),
            options: lower::Options::default(),
            emit: None,
        });
        assert!(out.model.is_some(), "{:?}", out.diagnostics.items());
        (dir, out)
    }

    #[test]
    fn the_runtime_is_named_relative_to_the_output_directory() {
        let rel = |from: &str, to: &str| {
            relative_path(Path::new(from), Path::new(to)).map(|p| p.display().to_string())
        };
        // generated-example/, inside the repository.
        assert_eq!(
            rel("/r/gatewayc/generated-example", "/r/gatewayc/runtime").as_deref(),
            Some("../runtime")
        );
        // A crate in another tree, deeper than the runtime.
        assert_eq!(
            rel("/home/u/api/gateway", "/home/u/src/gatewayc/runtime").as_deref(),
            Some("../../src/gatewayc/runtime")
        );
        // Inside the runtime's own directory, and the runtime's directory itself.
        assert_eq!(rel("/r/runtime/out", "/r/runtime").as_deref(), Some(".."));
        assert_eq!(rel("/r/runtime", "/r/runtime").as_deref(), Some("."));
        // Only the root in common.
        assert_eq!(
            rel("/tmp/gw", "/opt/gatewayc/runtime").as_deref(),
            Some("../../opt/gatewayc/runtime")
        );
        // A component that only starts like the other's is not in common.
        assert_eq!(
            rel("/r/gatewayc-out", "/r/gatewayc/runtime").as_deref(),
            Some("../gatewayc/runtime")
        );
    }

    #[test]
    fn builds_share_one_target_directory_unless_told_otherwise() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let home = env(&[("HOME", "/home/u")]);
        assert_eq!(
            target_dir(None, false, &home),
            Some(PathBuf::from("/home/u/.cache/gatewayc/target"))
        );
        let xdg = env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/var/cache/u")]);
        assert_eq!(
            target_dir(None, false, &xdg),
            Some(PathBuf::from("/var/cache/u/gatewayc/target"))
        );
        // A relative XDG_CACHE_HOME is invalid (XDG Base Directory): ignored.
        let relative = env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "cache")]);
        assert_eq!(
            target_dir(None, false, &relative),
            Some(PathBuf::from("/home/u/.cache/gatewayc/target"))
        );
        let cargo = env(&[("HOME", "/home/u"), ("CARGO_TARGET_DIR", "/ci/target")]);
        assert_eq!(
            target_dir(None, false, &cargo),
            Some(PathBuf::from("/ci/target"))
        );
        // The flag wins; a workspace member builds in its workspace's target directory.
        assert_eq!(
            target_dir(Some("t".into()), false, &cargo),
            Some(PathBuf::from("t"))
        );
        assert_eq!(target_dir(None, true, &home), None);
        assert_eq!(
            target_dir(None, true, &cargo),
            Some(PathBuf::from("/ci/target"))
        );
        assert_eq!(target_dir(None, false, &env(&[])), None);
    }

    #[test]
    fn the_binary_is_placed_in_the_output_directory_and_survives_a_rebuild_elsewhere() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let shared = tmp.path().join("shared/debug/gw");
        std::fs::create_dir_all(tmp.path().join("shared/debug")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&shared, "first").unwrap_or_else(|e| panic!("{e}"));
        let a = tmp.path().join("a");
        let placed = place_binary(&shared, &a, "debug").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(placed, a.join("target/debug/gw"));
        // Cargo replaces a binary it uplifts (a new file), as another gateway's build would.
        std::fs::remove_file(&shared).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&shared, "second").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&placed).ok().as_deref(),
            Some("first")
        );
        let again = place_binary(&shared, &a, "debug").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&again).ok().as_deref(),
            Some("second")
        );
        // Built in the crate's own target directory: left where it is.
        let own = place_binary(&again, &a, "debug").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            std::fs::read_to_string(&own).ok().as_deref(),
            Some("second")
        );
    }

    #[test]
    fn a_human_check_ends_with_what_the_gateway_will_need() {
        let (dir, out) = passing();
        let report = check_report(&out, Format::Human, dir.path());
        assert_eq!(report.stdout, "");
        assert_eq!(
            report.stderr,
            "ok: 1 operations
the gateway will need:
  environment variables that must be set:
    PETS_URL  upstream `pets`
  environment variables with a default:
    JWKS_URL  JWT scheme `idp`: JWKS URL [default: https://id.example.test/jwks]
  files, read at start-up (a missing one stops the gateway):
    keys.toml  API key file
  services:
    ${JWKS_URL:-https://id.example.test/jwks}  JWT scheme `idp`: JWKS, called at start-up (ready once it answers)
"
        );
    }

    #[test]
    fn json_and_sarif_carry_the_same_needs() {
        let (dir, out) = passing();
        let json: Value =
            serde_json::from_str(&check_report(&out, Format::Json, dir.path()).stdout)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["diagnostics"], serde_json::json!([]));
        assert_eq!(json["operations"], 1);
        let names: Vec<&str> = json["needs"]["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(names, ["JWKS_URL", "PETS_URL"]);
        assert_eq!(
            json["needs"]["files"],
            serde_json::json!([{ "path": "keys.toml", "uses": ["API key file"] }])
        );
        assert_eq!(json["needs"]["services"][0]["when"], "start-up");

        let sarif: Value =
            serde_json::from_str(&check_report(&out, Format::Sarif, dir.path()).stdout)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sarif["runs"][0]["properties"]["needs"], json["needs"]);
        assert_eq!(sarif["runs"][0]["properties"]["operations"], 1);
    }

    #[test]
    fn a_failed_check_has_diagnostics_and_no_needs() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = dir.path().join("api.yaml");
        std::fs::write(&spec, "openapi: 3.0.3\ninfo: { title: t, version: \"1\" }\nsecurity: []\npaths:\n  /a:\n    get: { operationId: a, responses: { \"200\": { description: ok } } }\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let out = compile(&Input {
            specs: vec![spec],
            base: dir.path().to_path_buf(),
            options: lower::Options::default(),
            emit: None,
        });
        let json: Value =
            serde_json::from_str(&check_report(&out, Format::Json, dir.path()).stdout)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json["diagnostics"][0]["code"], "E0301");
        assert_eq!(json["operations"], Value::Null);
        assert_eq!(json["needs"], Value::Null);
        let human = check_report(&out, Format::Human, dir.path()).stderr;
        assert!(human.contains("error[E0301]"), "{human}");
        assert!(!human.contains("will need"), "{human}");
        let sarif: Value =
            serde_json::from_str(&check_report(&out, Format::Sarif, dir.path()).stdout)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "E0301");
        assert!(sarif["runs"][0].get("properties").is_none());
    }
}
