/// The version of compeft, recorded in every container.
public enum CompeftVersion {
    public static let string = "0.1.0"
}
