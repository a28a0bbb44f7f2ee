// sphere.frag: intersect the eye ray with the sphere, write the true depth, and light the
// hit point: a key light from the upper left, a white highlight and a rim in the body's own
// colour. The silhouette fades over one pixel, measured with screen-space derivatives.
#version 330 core
in vec3 v_ray;
in vec3 v_center;
in vec3 v_color;

uniform mat4 u_proj;
uniform float u_radius;

out vec4 frag;

void main()
{
    vec3 dir = normalize(v_ray);
    float b = dot(dir, v_center);
    vec3 closest = b * dir - v_center;         // from the centre to the ray's nearest point
    float q = length(closest);                 // distance of the ray from the centre
    float edge = clamp(0.5 + (u_radius - q) / max(fwidth(q), 1e-6), 0.0, 1.0);
    if (edge <= 0.0)
        discard;
    float h = sqrt(max(u_radius * u_radius - q * q, 0.0));
    vec3 hit = (b - h) * dir;                  // front intersection (the nearest point at the rim)
    vec3 n = (hit - v_center) / u_radius;
    vec4 clip = u_proj * vec4(hit, 1.0);
    gl_FragDepth = 0.5 * (clip.z / clip.w) + 0.5;

    vec3 v = -dir;
    vec3 l = normalize(vec3(-0.45, 0.6, 0.65));
    float diffuse = max(dot(n, l), 0.0);
    float spec = pow(max(dot(n, normalize(l + v)), 0.0), 48.0);
    float rim = pow(1.0 - max(dot(n, v), 0.0), 3.0);
    vec3 c = v_color * (0.25 + 0.75 * diffuse) + vec3(0.45) * spec + v_color * 0.35 * rim;
    frag = vec4(c, edge);
}
