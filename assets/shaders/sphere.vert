// sphere.vert: each body is a ray-cast sphere on a quad facing the eye; the quad is the
// disc where the cone of sight lines tangent to the sphere crosses the plane through its
// centre, grown a little so the fragment shader has room to antialias the silhouette.
#version 330 core
layout(location = 0) in vec2 a_corner;  // quad corner, (-1, -1) .. (1, 1)
layout(location = 1) in vec3 i_center;  // body position, world units
layout(location = 2) in vec3 i_color;   // body colour by charge

uniform mat4 u_view;
uniform mat4 u_proj;
uniform float u_radius;

out vec3 v_ray;    // view-space point on the quad: the direction of the eye ray
out vec3 v_center; // view-space sphere centre
out vec3 v_color;

void main()
{
    vec3 c = (u_view * vec4(i_center, 1.0)).xyz;
    float d = length(c);
    vec3 w = c / max(d, 1e-6);
    vec3 u = normalize(abs(w.y) < 0.99 ? cross(w, vec3(0.0, 1.0, 0.0)) : cross(w, vec3(1.0, 0.0, 0.0)));
    vec3 v = cross(u, w);
    // Radius of the tangent cone at distance d, 15% larger for the antialiased edge.
    float r = u_radius * d / sqrt(max(d * d - u_radius * u_radius, 1e-6)) * 1.15;
    vec3 p = c + r * (a_corner.x * u + a_corner.y * v);
    v_ray = p;
    v_center = c;
    v_color = i_color;
    gl_Position = u_proj * vec4(p, 1.0);
}
