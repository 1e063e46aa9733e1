/// The Kubernetes objects `export k8s` writes, as typed values with the API's key
/// names (core/v1 Pod, networking.k8s.io/v1 NetworkPolicy, cilium.io/v2
/// CiliumNetworkPolicy). Only the fields the export sets; JSON, which kubectl reads.
public enum K8s {
    public struct ObjectMeta: Codable, Sendable, Equatable {
        public var name: String
        public var labels: [String: String]?
        public var annotations: [String: String]?
    }

    public struct Pod: Codable, Sendable, Equatable {
        public var apiVersion = "v1"
        public var kind = "Pod"
        public var metadata: ObjectMeta
        public var spec: PodSpec
    }

    public struct PodSpec: Codable, Sendable, Equatable {
        public var restartPolicy = "Never"
        public var automountServiceAccountToken = false
        public var enableServiceLinks = false
        public var hostname: String?
        public var activeDeadlineSeconds: Int64?
        public var securityContext: PodSecurityContext
        public var containers: [Container]
        public var volumes: [Volume]?
    }

    public struct SeccompProfile: Codable, Sendable, Equatable {
        public var type: String
        public var localhostProfile: String?
    }

    public struct PodSecurityContext: Codable, Sendable, Equatable {
        public var runAsUser: Int64
        public var runAsGroup: Int64
        public var runAsNonRoot: Bool?
        public var supplementalGroups: [Int64]?
        public var seccompProfile: SeccompProfile?
    }

    public struct Container: Codable, Sendable, Equatable {
        public var name: String
        public var image: String
        public var command: [String]
        public var workingDir: String
        public var env: [EnvVar]
        public var resources: Resources?
        public var securityContext: SecurityContext
        public var volumeMounts: [VolumeMount]?
    }

    public struct EnvVar: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public struct Resources: Codable, Sendable, Equatable {
        public var limits: [String: String]
        public var requests: [String: String]
    }

    public struct Capabilities: Codable, Sendable, Equatable {
        public var drop: [String]
        public var add: [String]?
    }

    public struct SecurityContext: Codable, Sendable, Equatable {
        public var allowPrivilegeEscalation = false
        public var privileged = false
        public var readOnlyRootFilesystem = true
        public var runAsUser: Int64
        public var runAsGroup: Int64
        public var runAsNonRoot: Bool?
        public var capabilities: Capabilities
        public var seccompProfile: SeccompProfile?
    }

    public struct VolumeMount: Codable, Sendable, Equatable {
        public var name: String
        public var mountPath: String
        public var readOnly: Bool?
    }

    public struct Volume: Codable, Sendable, Equatable {
        public var name: String
        public var emptyDir: EmptyDir
        public struct EmptyDir: Codable, Sendable, Equatable {
            public var medium: String?
            public var sizeLimit: String?
        }
    }

    public struct LabelSelector: Codable, Sendable, Equatable {
        public var matchLabels: [String: String]
    }

    public struct NetworkPolicy: Codable, Sendable, Equatable {
        public var apiVersion = "networking.k8s.io/v1"
        public var kind = "NetworkPolicy"
        public var metadata: ObjectMeta
        public var spec: NetworkPolicySpec
    }

    /// No `ingress` with `Ingress` in `policyTypes`: nothing comes in. `egress` lists
    /// all that goes out (empty: nothing).
    public struct NetworkPolicySpec: Codable, Sendable, Equatable {
        public var podSelector: LabelSelector
        public var policyTypes = ["Ingress", "Egress"]
        public var egress: [EgressRule]
    }

    public struct EgressRule: Codable, Sendable, Equatable {
        public var to: [Peer]
        public var ports: [Port]?
    }

    public struct Peer: Codable, Sendable, Equatable {
        public var ipBlock: IPBlock?
        public var namespaceSelector: LabelSelector?
        public var podSelector: LabelSelector?
    }

    public struct IPBlock: Codable, Sendable, Equatable {
        public var cidr: String
    }

    public struct Port: Codable, Sendable, Equatable {
        public var `protocol`: String
        public var port: Int
    }

    public struct CiliumNetworkPolicy: Codable, Sendable, Equatable {
        public var apiVersion = "cilium.io/v2"
        public var kind = "CiliumNetworkPolicy"
        public var metadata: ObjectMeta
        public var spec: CiliumSpec
    }

    public struct CiliumSpec: Codable, Sendable, Equatable {
        public var endpointSelector: LabelSelector
        public var egress: [CiliumEgressRule]
    }

    public struct CiliumEgressRule: Codable, Sendable, Equatable {
        public var toEndpoints: [LabelSelector]?
        public var toFQDNs: [FQDNSelector]?
        public var toPorts: [CiliumPortRule]
    }

    /// One of the two.
    public struct FQDNSelector: Codable, Sendable, Equatable {
        public var matchName: String?
        public var matchPattern: String?
    }

    public struct CiliumPortRule: Codable, Sendable, Equatable {
        public var ports: [CiliumPort]
        public var rules: CiliumL7Rules?
    }

    public struct CiliumPort: Codable, Sendable, Equatable {
        /// A string in Cilium's API.
        public var port: String
        public var `protocol`: String
    }

    public struct CiliumL7Rules: Codable, Sendable, Equatable {
        public var dns: [FQDNSelector]
    }
}
