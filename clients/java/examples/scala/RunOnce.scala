// The lockd Java client used as is from Scala (Scala 2.11, as Debian 12 ships it):
// run a job once across machines under a lease that is kept alive while it runs.
import io.lockd.client.{LockHeldException, LockdClient}
import java.time.Duration

object RunOnce {
  def main(args: Array[String]): Unit = {
    val url = sys.env.getOrElse("LOCKD_URL", "http://127.0.0.1:2080")
    val client = LockdClient.builder().endpoints(url.split(","): _*).build()
    try {
      val lock = client.acquire("nightly-report-scala", Duration.ofSeconds(30)).keepalive()
      try println(s"scala: ran the job with token ${lock.token()}")
      finally lock.close()
    } catch {
      case e: LockHeldException => println(s"scala: another machine runs it: ${e.holder()}")
    }
  }
}
