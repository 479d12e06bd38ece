//! The published contract: OpenAPI 3.1 documents of the admin API (`/admin/v1/openapi.json`)
//! and the product API (`/product/v1/openapi.json`), built from the same tables that register
//! the routes.
//!
//! A surface registers each route through [`Routes::add`], which takes the handler and its
//! [`Doc`] (summary, query parameters, request body and answers, their schemas derived from
//! the Rust types with utoipa's `ToSchema`). The actix scope and the document are both made
//! from that one table, so a route cannot be served undocumented or documented unserved; the
//! path parameters come from the path itself, and every operation lists the error answers the
//! edge gives (`{"error", "message"}`, see `http::error`).

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};
use utoipa::ToSchema;

/// Schemas a document must define, by name.
type Schemas = Vec<(String, RefOr<Schema>)>;

/// A reference to `T`'s schema, recording it (and the schemas it refers to) in `schemas`.
fn reference<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

/// One answer of an operation.
struct Answer {
    status: u16,
    description: &'static str,
    /// The JSON body, if any; `content_type` when it is not JSON.
    body: Option<RefOr<Schema>>,
    content_type: &'static str,
}

/// What one route does, for the document.
pub struct Doc {
    summary: &'static str,
    description: Option<&'static str>,
    query: Vec<(&'static str, &'static str, Type)>,
    body: Option<(RefOr<Schema>, bool)>,
    answers: Vec<Answer>,
    schemas: Schemas,
}

impl Doc {
    pub fn new(summary: &'static str) -> Doc {
        Doc {
            summary,
            description: None,
            query: Vec::new(),
            body: None,
            answers: Vec::new(),
            schemas: Vec::new(),
        }
    }

    /// A longer description.
    pub fn describe(mut self, text: &'static str) -> Doc {
        self.description = Some(text);
        self
    }

    /// An optional text query parameter.
    pub fn query(mut self, name: &'static str, description: &'static str) -> Doc {
        self.query.push((name, description, Type::String));
        self
    }

    /// An optional integer query parameter.
    pub fn query_int(mut self, name: &'static str, description: &'static str) -> Doc {
        self.query.push((name, description, Type::Integer));
        self
    }

    /// The JSON request body, required.
    pub fn body<T: ToSchema>(mut self) -> Doc {
        let r = reference::<T>(&mut self.schemas);
        self.body = Some((r, true));
        self
    }

    /// The JSON request body, optional.
    pub fn optional_body<T: ToSchema>(mut self) -> Doc {
        let r = reference::<T>(&mut self.schemas);
        self.body = Some((r, false));
        self
    }

    fn answer(
        mut self,
        status: u16,
        description: &'static str,
        body: Option<RefOr<Schema>>,
    ) -> Doc {
        self.answers.push(Answer {
            status,
            description,
            body,
            content_type: "application/json",
        });
        self
    }

    /// 200 with a `T`.
    pub fn ok<T: ToSchema>(mut self, description: &'static str) -> Doc {
        let r = reference::<T>(&mut self.schemas);
        self.answer(200, description, Some(r))
    }

    /// 201 with a `T`.
    pub fn created<T: ToSchema>(mut self, description: &'static str) -> Doc {
        let r = reference::<T>(&mut self.schemas);
        self.answer(201, description, Some(r))
    }

    /// 202 with a `T`.
    pub fn accepted<T: ToSchema>(mut self, description: &'static str) -> Doc {
        let r = reference::<T>(&mut self.schemas);
        self.answer(202, description, Some(r))
    }

    /// 200 with `{field: [T]}`.
    pub fn list<T: ToSchema>(mut self, field: &'static str, description: &'static str) -> Doc {
        let item = reference::<T>(&mut self.schemas);
        let object = ObjectBuilder::new()
            .property(field, ArrayBuilder::new().items(item))
            .required(field)
            .build();
        self.answer(200, description, Some(RefOr::T(Schema::Object(object))))
    }

    /// 204, no body.
    pub fn no_content(self, description: &'static str) -> Doc {
        self.answer(204, description, None)
    }

    /// 200 with any JSON object (a document of its own, as the OpenAPI documents are).
    pub fn any_object(self, description: &'static str) -> Doc {
        let object = ObjectBuilder::new().build();
        self.answer(200, description, Some(RefOr::T(Schema::Object(object))))
    }

    /// 200 with a body that is not JSON.
    pub fn ok_text(mut self, content_type: &'static str, description: &'static str) -> Doc {
        self.answers.push(Answer {
            status: 200,
            description,
            body: Some(RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::String).build(),
            ))),
            content_type,
        });
        self
    }
}

/// One registered route.
pub struct Entry {
    pub method: Method,
    /// The full path, with `{name}` parameters.
    pub path: String,
    doc: Doc,
}

/// A surface's routes: registered on its actix scope and recorded for its document.
///
/// The routes are registered as a tree of nested scopes, one level per path segment (a chain
/// of levels with no route of their own is one scope: `/tenants/{tenant}`). actix matches a
/// request against a scope's services one after another, and a service whose path has a
/// parameter is a regular expression with captures: with the admin routes in one flat scope,
/// finding a seat check's route cost a fifth of the daemon's CPU on that request, and with a
/// scope per first three segments still 15% (measured with `perf`). In the tree a request
/// compares a few words and runs one expression per parameter in its path. A level never
/// holds both a word and a parameter but one, where the word is tried first: `POST
/// .../notifications/test` sends a test, and no notification has the id `test`
/// (`tree_levels_mix_words_and_parameters_only_where_known`), so the route a path finds is the
/// one its full pattern names.
pub struct Routes {
    prefix: &'static str,
    /// The routes below the prefix, by segment.
    tree: Node,
    pub entries: Vec<Entry>,
}

/// One level of the route tree: the routes whose path ends here and the levels below, by their
/// next segment (a word, or a `{parameter}`), in the order of their first route.
#[derive(Default)]
struct Node {
    resources: Vec<actix_web::Resource>,
    children: Vec<(String, Node)>,
}

impl Node {
    /// The level at `segments` below this one, made where missing.
    fn at(&mut self, segments: &[&str]) -> &mut Node {
        let Some((first, rest)) = segments.split_first() else {
            return self;
        };
        let i = match self.children.iter().position(|(s, _)| s == first) {
            Some(i) => i,
            None => {
                self.children.push(((*first).to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        self.children[i].1.at(rest)
    }

    /// This level as the services of `scope`, each nested level a scope with `last` applied.
    fn into_services(
        self,
        mut scope: actix_web::Scope,
        last: &dyn Fn(actix_web::Scope) -> actix_web::Scope,
    ) -> actix_web::Scope {
        for r in self.resources {
            scope = scope.service(r);
        }
        // Words before a parameter: actix takes the first service that matches.
        let (words, params): (Vec<_>, Vec<_>) = self
            .children
            .into_iter()
            .partition(|(s, _)| !s.starts_with('{'));
        for (segment, child) in words.into_iter().chain(params) {
            let (path, level) = child.compressed(format!("/{segment}"));
            scope = scope.service(last(level.into_services(web::scope(&path), last)));
        }
        scope
    }

    /// This level and the levels below it that hold no route and one level each, as one path.
    fn compressed(self, path: String) -> (String, Node) {
        if self.resources.is_empty() && self.children.len() == 1 {
            let Some((segment, child)) = self.children.into_iter().next() else {
                unreachable!("one child")
            };
            return child.compressed(format!("{path}/{segment}"));
        }
        (path, self)
    }

    /// Levels (by their path) that hold both a word and a parameter among their next segments.
    #[cfg(test)]
    fn mixed(&self, path: &str) -> Vec<String> {
        let is_param = |(s, _): &(String, Node)| s.starts_with('{');
        let mut found = Vec::new();
        if self.children.iter().any(is_param) && !self.children.iter().all(is_param) {
            found.push(path.to_owned());
        }
        for (s, c) in &self.children {
            found.extend(c.mixed(&format!("{path}/{s}")));
        }
        found
    }
}

impl Routes {
    pub fn new(prefix: &'static str) -> Routes {
        Routes {
            prefix,
            tree: Node::default(),
            entries: Vec::new(),
        }
    }

    /// Registers `handler` for `method` on `path` (below the prefix), documented by `doc`.
    pub fn add<F, Args>(mut self, method: Method, path: &str, handler: F, doc: Doc) -> Routes
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        let full = format!("{}{path}", self.prefix);
        // The method guards the resource (as `Scope::route` does), so that a path registered
        // for several methods finds the resource of each.
        let resource = web::resource("")
            .guard(actix_web::guard::Method(method.clone()))
            .app_data(super::RoutePattern(full.clone()))
            .route(web::route().to(handler));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.tree.at(&segments).resources.push(resource);
        self.entries.push(Entry {
            method,
            path: full,
            doc,
        });
        self
    }

    /// The actix scope, with `last` applied to it and to each nested scope (their default
    /// service: a path under a nested scope that no route of it matches is answered there).
    pub fn into_scope(
        self,
        last: impl Fn(actix_web::Scope) -> actix_web::Scope,
    ) -> actix_web::Scope {
        last(self.tree.into_services(web::scope(self.prefix), &last))
    }

    /// Every registered (method, full path).
    pub fn table(&self) -> Vec<(Method, String)> {
        self.entries
            .iter()
            .map(|e| (e.method.clone(), e.path.clone()))
            .collect()
    }

    /// The OpenAPI document of these routes; their callers authenticate with a bearer token
    /// described by `auth`.
    pub fn document(self, title: &str, description: &str, auth: &str) -> OpenApi {
        let mut schemas: BTreeMap<String, RefOr<Schema>> = BTreeMap::new();
        let mut errors = Schemas::new();
        let error = reference::<ErrorBody>(&mut errors);
        let mut items: BTreeMap<String, Vec<(HttpMethod, utoipa::openapi::path::Operation)>> =
            BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for e in self.entries {
            let Doc {
                summary,
                description,
                query,
                body,
                answers,
                schemas: used,
            } = e.doc;
            schemas.extend(used);
            let mut op = OperationBuilder::new()
                .summary(Some(summary))
                .description(description)
                .operation_id(Some(operation_id(&e.method, &e.path)))
                .tag(tag_of(&e.path));
            let params = path_params(&e.path);
            let has_params = !params.is_empty();
            for name in params {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some(param_description(name, &e.path)))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
            let has_query = !query.is_empty();
            for (name, d, ty) in query {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(d))
                        .schema(Some(ObjectBuilder::new().schema_type(ty))),
                );
            }
            let has_body = body.is_some();
            if let Some((schema, required)) = body {
                op = op.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(schema)).build(),
                        )
                        .required(Some(if required {
                            Required::True
                        } else {
                            Required::False
                        }))
                        .build(),
                ));
            }
            // Answers of one status are one response with a content type each (JSON, CSV).
            let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
            statuses.dedup();
            for status in statuses {
                let mut same = answers.iter().filter(|a| a.status == status).peekable();
                let mut r =
                    ResponseBuilder::new().description(same.peek().map_or("", |a| a.description));
                for a in same {
                    if let Some(b) = &a.body {
                        r = r.content(
                            a.content_type,
                            ContentBuilder::new().schema(Some(b.clone())).build(),
                        );
                    }
                }
                op = op.response(status.to_string(), r.build());
            }
            let err = |d: &str| {
                ResponseBuilder::new()
                    .description(d)
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(error.clone())).build(),
                    )
                    .build()
            };
            if has_body || has_query || has_params {
                op = op.response("400", err("The request is not valid: `message` says why."));
            }
            op = op.response("401", err("No valid token.")).response(
                "403",
                err("The token may not do this (another tenant, or an operator-only path)."),
            );
            if has_params {
                op = op.response(
                    "404",
                    err("No such tenant, license, user or other resource."),
                );
            }
            if e.method == Method::POST || e.method == Method::PATCH || e.method == Method::PUT {
                op = op.response("409", err("The change conflicts with the current state."));
            }
            op = op
                .response(
                    "429",
                    err("Too many requests; retry after `Retry-After` seconds."),
                )
                .response(
                    "503",
                    err("The service is busy or stopping; retry after `Retry-After` seconds."),
                );
            if !items.contains_key(&e.path) {
                order.push(e.path.clone());
            }
            items
                .entry(e.path)
                .or_default()
                .push((http_method(&e.method), op.build()));
        }
        let mut paths = PathsBuilder::new();
        for path in order {
            let mut ops = items.remove(&path).unwrap_or_default().into_iter();
            let Some((m, first)) = ops.next() else {
                continue;
            };
            let mut item = PathItem::new(m, first);
            for (m, op) in ops {
                item.merge_operations(PathItem::new(m, op));
            }
            paths = paths.path(path, item);
        }
        for (name, s) in errors {
            schemas.insert(name, s);
        }
        let mut components = ComponentsBuilder::new().security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(auth))
                    .build(),
            ),
        );
        for (name, s) in schemas {
            components = components.schema(name, s);
        }
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title(title)
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(description)),
            )
            .paths(paths.build())
            .components(Some(components.build()))
            .security(Some([SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]))
            .build()
    }
}

/// The error body of the admin and product APIs.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// A stable code: `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `too_many_requests`, `busy`, `internal`, ...
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// `{name}` segments of `path`, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

fn param_description(name: &str, path: &str) -> &'static str {
    match name {
        "tenant" => "The tenant's id or name.",
        "license" => "The license's id or name.",
        "user" if path.starts_with("/product/") => {
            "The user: a SCIM id, a userName (any case), an externalId or an email address of the user."
        }
        "user" => "The user's SCIM id or userName.",
        "delivery" => "The delivery's webhook-id (msg_...).",
        _ => "The id.",
    }
}

/// The first path segment after the version, as the tag (`tenants`, `webhooks`, ...), and the
/// resource under a tenant (`licenses`, `tokens`, ...).
fn tag_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // ["admin", "v1", "tenants", "{tenant}", "licenses", ...]
    match parts.get(2..) {
        Some(["tenants", _, resource, ..]) => (*resource).to_owned(),
        Some([first, ..]) => (*first).trim_end_matches(".json").to_owned(),
        _ => "other".to_owned(),
    }
}

/// `get_tenants_tenant_licenses` for `GET /admin/v1/tenants/{tenant}/licenses`: unique per route.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.split('/').filter(|s| !s.is_empty()).skip(2) {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
                .map(|c| if c == '-' || c == '.' { '_' } else { c }),
        );
    }
    id
}

#[cfg(test)]
mod tree_tests {
    #[test]
    fn tree_levels_mix_words_and_parameters_only_where_known() {
        let admin = super::super::admin::routes();
        assert_eq!(
            admin.tree.mixed(admin.prefix),
            vec!["/admin/v1/tenants/{tenant}/notifications".to_owned()]
        );
        let product = super::super::product::routes();
        assert_eq!(product.tree.mixed(product.prefix), Vec::<String>::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_and_tags_follow_the_path() {
        assert_eq!(
            operation_id(&Method::GET, "/admin/v1/tenants/{tenant}/licenses"),
            "get_tenants_tenant_licenses"
        );
        assert_eq!(
            tag_of("/admin/v1/tenants/{tenant}/licenses/{license}"),
            "licenses"
        );
        assert_eq!(tag_of("/admin/v1/tenants"), "tenants");
        assert_eq!(tag_of("/admin/v1/openapi.json"), "openapi");
        assert_eq!(path_params("/a/{x}/b/{y}"), ["x", "y"]);
    }
}
