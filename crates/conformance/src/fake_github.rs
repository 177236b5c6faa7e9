//! A local server that speaks the subset of GitHub's REST API that pull requests and
//! comments take, with state: repositories hold branches, commits and trees (whole file
//! texts), so a test reads back what a branch holds after the production client committed
//! to it. Answers follow GitHub's shapes and refusals (404 for a missing file or branch, 422
//! for an existing branch or pull request); any request can be scripted to fail once first
//! (a rate limit, an outage). A GitHub App's installation tokens are minted for a request
//! carrying a JSON Web Token, which the repository endpoints refuse, as GitHub does.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A comment made on an issue or pull request.
#[derive(Clone, Debug)]
pub struct Comment {
    pub repo: String,
    pub issue: u64,
    pub body: String,
}

enum Object {
    Tree(BTreeMap<String, String>),
    Commit { tree: String, message: String },
}

struct Repo {
    default_branch: String,
    refs: BTreeMap<String, String>,
    pulls: Vec<Value>,
}

/// A failure served once, to the first request whose method matches and whose path ends
/// with `suffix`.
struct Failure {
    method: Method,
    suffix: String,
    status: u16,
    headers: Vec<(String, String)>,
}

#[derive(Default)]
struct World {
    repos: HashMap<String, Repo>,
    objects: HashMap<String, Object>,
    next: u64,
    seen: Vec<Request>,
    comments: Vec<Comment>,
    failures: VecDeque<Failure>,
    /// Installation tokens minted so far.
    minted: Vec<String>,
}

impl World {
    fn put(&mut self, o: Object) -> String {
        self.next += 1;
        let sha = format!("{:040x}", self.next);
        self.objects.insert(sha.clone(), o);
        sha
    }

    fn tree_of_commit(&self, commit: &str) -> Option<&BTreeMap<String, String>> {
        let Some(Object::Commit { tree, .. }) = self.objects.get(commit) else {
            return None;
        };
        match self.objects.get(tree) {
            Some(Object::Tree(files)) => Some(files),
            _ => None,
        }
    }
}

/// The running server; it stops when dropped.
pub struct FakeGithub {
    pub addr: SocketAddr,
    world: Arc<Mutex<World>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGithub {
    pub async fn start() -> Self {
        let world = Arc::new(Mutex::new(World::default()));
        let app = Router::new()
            .fallback(axum::routing::any(handle))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub server");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, world, task }
    }

    /// The API base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `name` (`owner/repo`) whose `branch` (its default) holds `files`.
    pub fn repository(&self, name: &str, branch: &str, files: &[(&str, &str)]) {
        let mut w = self.world();
        let tree = w.put(Object::Tree(
            files
                .iter()
                .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
                .collect(),
        ));
        let commit = w.put(Object::Commit {
            tree,
            message: "Initial commit".into(),
        });
        w.repos.insert(
            name.to_owned(),
            Repo {
                default_branch: branch.to_owned(),
                refs: BTreeMap::from([(branch.to_owned(), commit)]),
                pulls: Vec::new(),
            },
        );
    }

    /// The files `branch` of `repo` holds, if it exists.
    pub fn files(&self, repo: &str, branch: &str) -> Option<BTreeMap<String, String>> {
        let w = self.world();
        let commit = w.repos.get(repo)?.refs.get(branch)?;
        w.tree_of_commit(commit).cloned()
    }

    /// A person's commit on a new `branch` of `repo`, from its default branch.
    pub fn branch_by_hand(&self, repo: &str, branch: &str) {
        let mut w = self.world();
        let Some(r) = w.repos.get(repo) else {
            return;
        };
        let tip = r.refs[&r.default_branch].clone();
        let Some(Object::Commit { tree, .. }) = w.objects.get(&tip) else {
            return;
        };
        let tree = tree.clone();
        let commit = w.put(Object::Commit {
            tree,
            message: "Work in progress".into(),
        });
        if let Some(r) = w.repos.get_mut(repo) {
            r.refs.insert(branch.to_owned(), commit);
        }
    }

    /// The pull requests opened in `repo`.
    pub fn pulls(&self, repo: &str) -> Vec<Value> {
        self.world()
            .repos
            .get(repo)
            .map(|r| r.pulls.clone())
            .unwrap_or_default()
    }

    pub fn comments(&self) -> Vec<Comment> {
        self.world().comments.clone()
    }

    /// The installation tokens minted so far, oldest first.
    pub fn minted(&self) -> Vec<String> {
        self.world().minted.clone()
    }

    pub fn seen(&self) -> Vec<Request> {
        self.world().seen.clone()
    }

    /// The next `method` request to a path ending with `suffix` is answered `status` with
    /// `headers` (and a GitHub error body) instead of being served.
    pub fn fail_once(&self, method: Method, suffix: &str, status: u16, headers: &[(&str, &str)]) {
        self.world().failures.push_back(Failure {
            method,
            suffix: suffix.to_owned(),
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
    }
}

fn reply(status: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn error(status: u16, message: &str) -> Response<Body> {
    reply(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest"}),
    )
}

async fn handle(
    State(world): State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut w = world.lock().unwrap_or_else(|p| p.into_inner());
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    w.seen.push(Request {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or(uri.path().to_owned(), |p| p.to_string()),
        authorization: authorization.clone(),
        body: body.clone(),
    });
    let Some(bearer) = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return error(401, "Requires authentication");
    };
    // A JSON Web Token has three dot-separated parts; tokens have none.
    let jwt = bearer.split('.').count() == 3;
    let failing = w
        .failures
        .iter()
        .position(|f| f.method == method && uri.path().ends_with(&f.suffix));
    if let Some(f) = failing.and_then(|i| w.failures.remove(i)) {
        let mut res = error(f.status, "scripted failure");
        for (k, v) in f.headers {
            res.headers_mut().insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                v.parse().expect("header value"),
            );
        }
        return res;
    }
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["app", "installations", installation, "access_tokens"] if method == Method::POST => {
            if !jwt {
                return error(401, "A JSON web token could not be decoded");
            }
            let token = format!("ghs_{installation}x{}", w.minted.len() + 1);
            w.minted.push(token.clone());
            let expires = chrono::Utc::now() + chrono::Duration::hours(1);
            reply(
                201,
                json!({"token": token, "expires_at": expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
            )
        }
        _ if jwt => error(401, "An installation token is required, not the App's JWT"),
        ["rate_limit"] => reply(200, json!({"resources": {"core": {"remaining": 4999}}})),
        ["repos", owner, name, rest @ ..] => {
            let full = format!("{owner}/{name}");
            serve(&mut w, &method, &full, rest, &query, &body)
        }
        _ => error(404, "Not Found"),
    }
}

fn serve(
    w: &mut World,
    method: &Method,
    full: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &Value,
) -> Response<Body> {
    if !w.repos.contains_key(full) {
        return error(404, "Not Found");
    }
    let str_of = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    match (method.as_str(), rest) {
        ("GET", []) => reply(
            200,
            json!({"full_name": full, "default_branch": w.repos[full].default_branch}),
        ),
        ("GET", ["git", "ref", "heads", branch @ ..]) => {
            match w.repos[full].refs.get(&branch.join("/")) {
                Some(sha) => reply(
                    200,
                    json!({"ref": format!("refs/heads/{}", branch.join("/")), "object": {"type": "commit", "sha": sha}}),
                ),
                None => error(404, "Not Found"),
            }
        }
        ("GET", ["git", "commits", sha]) => match w.objects.get(*sha) {
            Some(Object::Commit { tree, message }) => reply(
                200,
                json!({"sha": sha, "tree": {"sha": tree}, "message": message}),
            ),
            _ => error(404, "Not Found"),
        },
        ("GET", ["contents", path @ ..]) => {
            let at = query
                .get("ref")
                .cloned()
                .unwrap_or_else(|| w.repos[full].default_branch.clone());
            let commit = w.repos[full].refs.get(&at).cloned().unwrap_or(at);
            match w
                .tree_of_commit(&commit)
                .and_then(|t| t.get(&path.join("/")))
            {
                Some(text) => {
                    // GitHub folds the base64 at 60 characters.
                    let packed = base64::engine::general_purpose::STANDARD.encode(text);
                    let folded: Vec<String> = packed
                        .as_bytes()
                        .chunks(60)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    reply(
                        200,
                        json!({"type": "file", "encoding": "base64", "path": path.join("/"), "content": folded.join("\n")}),
                    )
                }
                None => error(404, "Not Found"),
            }
        }
        ("POST", ["git", "trees"]) => {
            let base = match w.objects.get(str_of("base_tree")) {
                Some(Object::Tree(files)) => files.clone(),
                _ => return error(422, "Invalid tree info"),
            };
            let mut files = base;
            for e in body["tree"].as_array().into_iter().flatten() {
                let (Some(path), Some(content)) = (e["path"].as_str(), e["content"].as_str())
                else {
                    return error(422, "tree.path and tree.content are required");
                };
                files.insert(path.to_owned(), content.to_owned());
            }
            let sha = w.put(Object::Tree(files));
            reply(201, json!({"sha": sha}))
        }
        ("POST", ["git", "commits"]) => {
            if !matches!(w.objects.get(str_of("tree")), Some(Object::Tree(_))) {
                return error(422, "Tree SHA does not exist");
            }
            let sha = w.put(Object::Commit {
                tree: str_of("tree").to_owned(),
                message: str_of("message").to_owned(),
            });
            reply(201, json!({"sha": sha, "message": str_of("message")}))
        }
        ("POST", ["git", "refs"]) => {
            let Some(branch) = str_of("ref").strip_prefix("refs/heads/") else {
                return error(422, "Reference name is invalid");
            };
            let sha = str_of("sha").to_owned();
            let repo = w.repos.get_mut(full).expect("checked above");
            if repo.refs.contains_key(branch) {
                return error(422, "Reference already exists");
            }
            repo.refs.insert(branch.to_owned(), sha.clone());
            reply(201, json!({"ref": str_of("ref"), "object": {"sha": sha}}))
        }
        ("PATCH", ["git", "refs", "heads", branch @ ..]) => {
            let sha = str_of("sha").to_owned();
            let repo = w.repos.get_mut(full).expect("checked above");
            match repo.refs.get_mut(&branch.join("/")) {
                Some(at) => {
                    *at = sha.clone();
                    reply(200, json!({"object": {"sha": sha}}))
                }
                None => error(422, "Reference does not exist"),
            }
        }
        ("POST", ["pulls"]) => {
            let repo = w.repos.get_mut(full).expect("checked above");
            let (head, base) = (str_of("head"), str_of("base"));
            if !repo.refs.contains_key(head) || !repo.refs.contains_key(base) {
                return error(422, "Validation Failed");
            }
            if repo.pulls.iter().any(|p| p["head"]["ref"] == head) {
                return error(422, "Validation Failed: A pull request already exists");
            }
            let number = repo.pulls.len() as u64 + 1;
            let pull = json!({
                "number": number,
                "html_url": format!("https://github.com/{full}/pull/{number}"),
                "title": str_of("title"), "body": str_of("body"),
                "head": {"ref": head}, "base": {"ref": base}, "state": "open",
            });
            repo.pulls.push(pull.clone());
            reply(201, pull)
        }
        ("GET", ["pulls"]) => {
            let head = query.get("head").cloned().unwrap_or_default();
            let open: Vec<Value> = w.repos[full]
                .pulls
                .iter()
                .filter(|p| {
                    head.split_once(':')
                        .is_none_or(|(_, branch)| p["head"]["ref"] == branch)
                })
                .cloned()
                .collect();
            reply(200, json!(open))
        }
        ("POST", ["issues", number, "comments"]) => {
            let Ok(issue) = number.parse::<u64>() else {
                return error(404, "Not Found");
            };
            w.comments.push(Comment {
                repo: full.to_owned(),
                issue,
                body: str_of("body").to_owned(),
            });
            let id = w.comments.len();
            reply(
                201,
                json!({"id": id, "html_url": format!("https://github.com/{full}/issues/{issue}#issuecomment-{id}")}),
            )
        }
        _ => error(404, "Not Found"),
    }
}
