//! Bodies of the `/auth/*` endpoints.
