// sphere.frag: a key light from the upper left, a white highlight and a rim in the body's
// own colour, so spheres read as round and the two charge colours stay recognisable.
#version 330 core
in vec3 v_normal;
in vec3 v_pos;
in vec3 v_color;

out vec4 frag;

void main()
{
    vec3 n = normalize(v_normal);
    vec3 v = normalize(-v_pos);
    vec3 l = normalize(vec3(-0.45, 0.6, 0.65));
    float diffuse = max(dot(n, l), 0.0);
    float spec = pow(max(dot(n, normalize(l + v)), 0.0), 48.0);
    float rim = pow(1.0 - max(dot(n, v), 0.0), 3.0);
    vec3 c = v_color * (0.25 + 0.75 * diffuse) + vec3(0.45) * spec + v_color * 0.35 * rim;
    frag = vec4(c, 1.0);
}
