//! Route tables for the surfaces that are not documented by OpenAPI (SCIM, the console): the
//! actix scope is built from the same list that says which (method, path) pairs it serves, so
//! every route a surface registers is in [`super::route_table`], and from there in the
//! cross-tenant matrix test (`tests/api/matrix.rs`) without anyone remembering to add it.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

/// A scope whose registered routes are recorded as they are added.
pub struct Listed {
    prefix: &'static str,
    scope: actix_web::Scope,
    entries: Vec<(Method, String)>,
}

/// One path of a [`Listed`] scope with a route per method and a service of its own for any
/// other method.
pub struct ListedResource {
    path: String,
    resource: actix_web::Resource,
    methods: Vec<Method>,
}

impl ListedResource {
    /// A resource at `path` (below the scope's prefix).
    pub fn new(path: &str) -> ListedResource {
        ListedResource {
            path: path.to_owned(),
            resource: web::resource(path.to_owned()),
            methods: Vec::new(),
        }
    }

    /// Serves `method` with `handler`.
    pub fn to<F, Args>(mut self, method: Method, handler: F) -> ListedResource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    /// What answers the methods this resource does not serve.
    pub fn otherwise<F, Args>(mut self, handler: F) -> ListedResource
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.default_service(web::to(handler));
        self
    }
}

impl Listed {
    pub fn new(prefix: &'static str) -> Listed {
        Listed {
            prefix,
            scope: web::scope(prefix),
            entries: Vec::new(),
        }
    }

    /// Serves `method` on `path` (below the prefix) with `handler`.
    pub fn route<F, Args>(mut self, method: Method, path: &str, handler: F) -> Listed
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.scope = self
            .scope
            .route(path, web::method(method.clone()).to(handler));
        self.entries
            .push((method, format!("{}{path}", self.prefix)));
        self
    }

    /// Serves a resource with several methods.
    pub fn resource(mut self, r: ListedResource) -> Listed {
        for m in &r.methods {
            self.entries
                .push((m.clone(), format!("{}{}", self.prefix, r.path)));
        }
        self.scope = self.scope.service(r.resource);
        self
    }

    /// The scope, with `f` applied (its default service, data).
    pub fn into_scope(
        self,
        f: impl FnOnce(actix_web::Scope) -> actix_web::Scope,
    ) -> actix_web::Scope {
        f(self.scope)
    }

    /// Every registered (method, full path).
    pub fn table(&self) -> Vec<(Method, String)> {
        self.entries.clone()
    }
}
